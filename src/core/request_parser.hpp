// Beast's request parser, made safe for any input. Beast reports bad input as error codes, except in
// two places where it throws from inside the read: basic_fields stores a field's name and value
// lengths in 16 bits and throws std::length_error past them, and string_body reserves the declared
// Content-Length at once (with no body limit, "Content-Length: 10^15" throws std::bad_alloc). An
// exception there leaves the read's completion, not a coroutine, so it ends io_context::run() and
// the worker with every connection on it. Included by session.hpp alone: Beast stays out of
// widely-included headers.
#pragma once

#include <agente/config.hpp>

#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string_view>

namespace agente::core {

// gunicorn's limits as the session gives them to each parser (a setting of 0 lifts gunicorn's check,
// not these bounds); the fuzz target tests/fuzz/request.cpp parses with the same.
inline std::size_t request_line_limit(const Config& c) {
    return c.limit_request_line ? std::size_t(c.limit_request_line) : 8190;
}

inline std::size_t header_limit(const Config& c) {
    std::size_t fields = c.limit_request_fields ? std::size_t(c.limit_request_fields) : 32768;
    std::size_t size = c.limit_request_field_size ? std::size_t(c.limit_request_field_size) : 65536;
    return request_line_limit(c) + 4 + fields * (size + 2) + 2;
}

// The body as a string, as string_body reads it, reserving at most 1 MiB ahead of what arrived.
struct BodyText : boost::beast::http::string_body {
    class reader : public boost::beast::http::string_body::reader {
    public:
        using boost::beast::http::string_body::reader::reader;

        void init(const boost::optional<std::uint64_t>& length, boost::beast::error_code& ec) {
            constexpr std::uint64_t ahead = 1024 * 1024;
            boost::beast::http::string_body::reader::init(length ? boost::optional<std::uint64_t>(std::min(*length, ahead)) : length, ec);
        }
    };
};

using RequestMessage = boost::beast::http::request<BodyText>;

// Refuses a field Beast cannot store, as a header too large (431), before basic_fields throws; and a
// field continued on the next line (obs-fold), which Beast would join into one value. Drops the
// trailer's fields.
class RequestParser final : public boost::beast::http::request_parser<BodyText> {
public:
    // Why the parse failed when Beast's error code cannot say it: the 400's message; else empty.
    std::string_view refusal() const { return refusal_; }

private:
    static constexpr std::size_t longest = std::numeric_limits<std::uint16_t>::max() - 2;

    void on_field_impl(boost::beast::http::field f, boost::beast::string_view name, boost::beast::string_view value,
                       boost::beast::error_code& ec) override {
        if (name.size() > longest || value.size() > longest) {
            ec = boost::beast::http::error::header_limit;
            return;
        }
        if (folded(name, value)) {
            refusal_ = "obsolete line folding in a header field";
            ec = boost::beast::http::error::bad_value;
            return;
        }
        // A chunked body's trailer: Beast would merge it into the header, where a Host or an
        // Authorization sent after the body would stand as if sent before it. RFC 9110 section
        // 6.5.1 forbids merging fields not defined for it, and no route reads a trailer: dropped.
        if (is_header_done()) return;
        get().insert(f, name, value);
    }

    // RFC 9112 section 5.2 lets a server refuse obs-fold (a field line followed by one that starts
    // with SP or HTAB) with a 400, as gunicorn 22+ does: a proxy in front may have read the second
    // line as a field of its own. Beast joins the lines instead, and only the value's position
    // tells: the name is a view of the input, ended by the colon, and an unfolded value starts right
    // after it and its leading blanks (an empty one too, at the CR). A folded value is a copy Beast
    // made, or, when the first line held nothing, starts on the next line. (Equality of pointers
    // into different objects is well defined; the walk stays within the line, which ends in CRLF.)
    static bool folded(boost::beast::string_view name, boost::beast::string_view value) {
        const char* p = name.data() + name.size() + 1;
        while (*p == ' ' || *p == '\t') ++p;
        return p != value.data();
    }

    std::string_view refusal_;
};

}  // namespace agente::core
