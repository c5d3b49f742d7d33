// Beast's request parser, made safe for any input. Beast reports bad input as error codes, except in
// two places where it throws from inside the read: basic_fields stores a field's name and value
// lengths in 16 bits and throws std::length_error past them, and string_body reserves the declared
// Content-Length at once (with no body limit, "Content-Length: 10^15" throws std::bad_alloc). An
// exception there leaves the read's completion, not a coroutine, so it ends io_context::run() and
// the worker with every connection on it. Included by http_session.cpp alone: Beast stays out of
// widely-included headers.
#pragma once

#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>

namespace agente::core {

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

// Refuses a field Beast cannot store, as a header too large (431), before basic_fields throws.
class RequestParser final : public boost::beast::http::request_parser<BodyText> {
    static constexpr std::size_t longest = std::numeric_limits<std::uint16_t>::max() - 2;

    void on_field_impl(boost::beast::http::field f, boost::beast::string_view name, boost::beast::string_view value,
                       boost::beast::error_code& ec) override {
        if (name.size() > longest || value.size() > longest) {
            ec = boost::beast::http::error::header_limit;
            return;
        }
        get().insert(f, name, value);
    }
};

}  // namespace agente::core
