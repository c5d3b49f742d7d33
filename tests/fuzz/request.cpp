// A connection's bytes, read as the session reads them (src/core/session.hpp): Beast's parser
// as src/core/request_parser.hpp makes it, with the server's default limits, fed the bytes as they
// arrive in pieces; empty lines before a request skipped; the framing rules (request_framing.hpp)
// over the head; the body read only when they and Beast frame it alike; then the next request while
// the connection stays open. Besides the sanitizers' checks (the folded-line check walks the raw
// input): a refusal closes the connection with a 4xx or 5xx and a reason, and a served request's body
// is exactly what the framing said.
//
// Input: one byte, the size of the pieces the bytes arrive in (0: all at once), then the bytes.
#include "core/request_framing.hpp"
#include "core/request_parser.hpp"
#include "require.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/container/small_vector.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

using namespace agente;
using namespace agente::core;
namespace http = boost::beast::http;

namespace {

// As the session's buffer: what arrived and is not consumed yet, with a bounded size.
class Connection {
public:
    Connection(std::string_view bytes, std::size_t piece) : unread_(bytes), piece_(piece) {}

    std::string& held() { return held_; }

    // One read: the next piece, if anything is left to arrive and there is room.
    bool receive(std::size_t max_size) {
        std::size_t n = piece_ ? std::min(piece_, unread_.size()) : unread_.size();
        if (n == 0 || held_.size() + n > max_size) return false;
        held_.append(unread_.substr(0, n));
        unread_.remove_prefix(n);
        return true;
    }

    // Puts what arrived into the parser, receiving more while it needs it, until the header (or,
    // `whole`, the message) is done; false when the parser refused or nothing more can arrive.
    bool parse(RequestParser& parser, boost::beast::error_code& ec, std::size_t max_size, bool whole) {
        while (!(whole ? parser.is_done() : parser.is_header_done())) {
            if (!held_.empty()) {
                std::size_t used = parser.put(boost::asio::buffer(held_), ec);
                held_.erase(0, used);
                bool more = ec == http::error::need_more;
                if (ec && !more) return false;
                ec = {};
                if (!more && used > 0) continue;
            }
            if (!receive(max_size)) return false;
        }
        return true;
    }

    bool done() const { return held_.empty() && unread_.empty(); }

private:
    std::string_view unread_;
    std::size_t piece_;
    std::string held_;
};

using Lines = boost::container::small_vector<std::string_view, 2>;

struct Head {
    Lines transfer_encoding, content_length, host;
};

void framing_lines(const ParsedRequest& m, Head& out) {
    for (const auto& f : m) {
        if (f.name() == http::field::transfer_encoding) out.transfer_encoding.push_back(f.value());
        else if (f.name() == http::field::content_length) out.content_length.push_back(f.value());
        else if (f.name() == http::field::host) out.host.push_back(f.value());
    }
}

// One request from the connection; false when the connection is over.
bool serve_one(Connection& conn, const Config& config) {
    std::size_t limit = header_limit(config);
    std::size_t max_size = limit + 64 * 1024 + 16 * 1024;  // as the session's buffer
    std::optional<RequestParser> parser;
    boost::beast::error_code ec;
    auto read_header = [&] {
        parser.emplace();
        parser->header_limit(limit);
        parser->body_limit(config.limit_request_body);
        ec = {};
        conn.parse(*parser, ec, max_size, false);
    };
    read_header();
    // RFC 9112 section 2.2: empty lines before the request line are dropped, as many as the request
    // line's limit (the session's skip_empty_lines), and the header read again.
    for (std::size_t skipped = 0; ec == http::error::bad_method;) {
        std::size_t n = 0;
        while (conn.held().substr(n, 2) == "\r\n" && skipped + n < request_line_limit(config)) n += 2;
        if (n == 0) break;
        conn.held().erase(0, n);
        skipped += n;
        read_header();
    }
    if (ec || !parser->is_header_done()) return false;  // refused by Beast, or the peer stopped sending

    const ParsedRequest& m = parser->get();
    if (m.version() != 10 && m.version() != 11) return false;  // 505
    Head h;
    framing_lines(m, h);
    RequestHead head{m.method_string(), m.version(), m.target(),
                     FieldLines(h.transfer_encoding.data(), h.transfer_encoding.size()),
                     FieldLines(h.content_length.data(), h.content_length.size()),
                     FieldLines(h.host.data(), h.host.size())};
    Framing f = frame_request(head);
    if (!f.ok()) {
        FUZZ_REQUIRE(f.status >= 400 && f.status < 600 && f.close && !f.reason.empty());
        return false;
    }
    FUZZ_REQUIRE(f.target.empty() || f.target.starts_with('/'));
    FUZZ_REQUIRE(m.version() == 10 || h.host.size() == 1);  // one Host, maybe empty (RFC 9112 3.2)
    bool alike = f.body == BodyFraming::chunked ? parser->chunked()
                                                : !parser->chunked() && parser->content_length().value_or(0) == f.length;
    if (!alike) return false;  // 400 "ambiguous message framing"
    if (f.body == BodyFraming::none) FUZZ_REQUIRE(parser->is_done());
    if (f.length > config.limit_request_body) return false;  // 413

    if (!parser->is_done()) {
        parser->eager(true);
        if (!conn.parse(*parser, ec, max_size, true)) return false;
    }
    FUZZ_REQUIRE(parser->is_done());
    if (f.body == BodyFraming::length) FUZZ_REQUIRE(m.body().size() == f.length);
    if (f.body == BodyFraming::none) FUZZ_REQUIRE(m.body().empty());
    return parser->keep_alive();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    static const Config config;  // the server's defaults: gunicorn's limits
    Connection conn(std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1), data[0] % 64);
    for (int requests = 0; requests < 16 && !conn.done(); ++requests)  // a keep-alive connection
        if (!serve_one(conn, config)) break;
    return 0;
}
