// Whether a request may be served, and how its body is framed, decided from its parsed head alone:
// the method, version and target, and the Transfer-Encoding, Content-Length and Host field lines
// (RFC 9112 sections 3.2, 6.1-6.3; RFC 9110 section 7.2). No socket and no Beast, so the unit tests
// read as the rules and a fuzzer can drive it. Beast parses; this refuses what Beast's defaults
// would frame one way and a proxy in front of us another (request smuggling), and the session
// reads a body only as this says.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace agente::core {

// Every line of one field, in the order received (a repeated field is several lines).
using FieldLines = std::span<const std::string_view>;

struct RequestHead {
    std::string_view method;           // as sent: methods are case-sensitive
    unsigned version = 11;             // 10 or 11; the parser answers other versions with 505
    std::string_view target;
    FieldLines transfer_encoding;
    FieldLines content_length;
    FieldLines host;
};

enum class BodyFraming { none, length, chunked };

struct Framing {
    int status = 0;                    // 0: serve the request; else refuse it with this status
    std::string_view reason;           // why it is refused: the answer's message and the log's
    bool close = false;                // end the connection after the answer: every refusal does
    BodyFraming body = BodyFraming::none;
    std::uint64_t length = 0;          // BodyFraming::length: the declared Content-Length
    std::string_view host;             // the authority served: the absolute target's, else Host's
    std::string target;                // absolute-form: its path and query to route on; else empty

    bool ok() const { return status == 0; }
};

Framing frame_request(const RequestHead& head);

}  // namespace agente::core
