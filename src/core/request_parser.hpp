// The request parser the session reads with: Beast's basic_parser does the HTTP; what it parsed is
// kept in one buffer per connection. Included by session.hpp alone: Beast stays out of widely
// included headers.
#pragma once

#include <agente/config.hpp>
#include <agente/handler.hpp>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

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

// A request as the session keeps it: the request line, the header's fields in arrival order, the
// body. Beast's request_parser would store each field in an allocation of its own, in a tree, and
// a new message per request; this keeps them all in one text buffer that the connection's next
// request reuses, so a keep-alive request allocates nothing to be read.
class ParsedRequest {
public:
    // One field as received. Views into the request: valid until the next request's parse begins.
    struct Field {
        boost::beast::http::field id;
        std::string_view name_text, value_text;
        boost::beast::http::field name() const { return id; }
        std::string_view name_string() const { return name_text; }
        std::string_view value() const { return value_text; }
    };

    class iterator {
    public:
        iterator(const ParsedRequest& r, std::size_t i) : r_(&r), i_(i) {}
        Field operator*() const { return r_->field(i_); }
        iterator& operator++() { ++i_; return *this; }
        bool operator!=(const iterator& o) const { return i_ != o.i_; }

    private:
        const ParsedRequest* r_;
        std::size_t i_;
    };

    boost::beast::http::verb method() const { return verb_; }
    std::string_view method_string() const { return view(method_); }
    std::string_view target() const { return view(target_); }
    unsigned version() const { return version_; }
    const std::string& body() const { return body_; }
    std::size_t body_padding() const { return body_.capacity() - body_.size(); }

    iterator begin() const { return {*this, 0}; }
    iterator end() const { return {*this, fields_.size()}; }
    Field field(std::size_t i) const {
        const Slot& s = fields_[i];
        return {s.id, view(s.name), view(s.value)};
    }
    // The first field of that name (case-insensitive), "" when there is none.
    std::string_view operator[](std::string_view name) const {
        for (const Slot& s : fields_)
            if (boost::beast::iequals(view(s.name), name)) return view(s.value);
        return {};
    }
    std::size_t count(std::string_view name) const {
        std::size_t n = 0;
        for (const Slot& s : fields_) n += boost::beast::iequals(view(s.name), name);
        return n;
    }

private:
    friend class RequestParser;

    struct Span {
        std::uint32_t at = 0, size = 0;
    };
    struct Slot {
        boost::beast::http::field id;
        Span name, value;
    };

    // Starts a new request, keeping the buffers' room unless a large body left them big.
    void clear() {
        constexpr std::size_t kept_body = 64 * 1024;
        text_.clear();
        fields_.clear();
        if (body_.capacity() > kept_body) std::string().swap(body_);
        else body_.clear();
        verb_ = boost::beast::http::verb::unknown;
        method_ = target_ = {};
        version_ = 11;
    }

    Span keep(std::string_view s) {
        Span span{std::uint32_t(text_.size()), std::uint32_t(s.size())};
        text_.append(s);
        return span;
    }
    std::string_view view(Span s) const { return std::string_view(text_).substr(s.at, s.size); }

    std::string text_;                // the method, the target, every field's name and value
    std::vector<Slot> fields_;
    std::string body_;
    boost::beast::http::verb verb_ = boost::beast::http::verb::unknown;
    Span method_, target_;
    unsigned version_ = 11;
};

// Beast's parser, made safe for any input and storing into a ParsedRequest. Refuses a field too
// large for the header (431), and a field continued on the next line (obs-fold), which Beast would
// join into one value. Drops the trailer's fields. The body reserves at most 1 MiB ahead of what
// arrived: a declared Content-Length is not trusted with an allocation (with no body limit,
// "Content-Length: 10^15" would throw std::bad_alloc from inside the read, where an exception ends
// io_context::run() and the worker with every connection on it).
class RequestParser final : public boost::beast::http::basic_parser<true> {
public:
    // Parses into `into`, which it clears; the session keeps one per connection, so that its room
    // is reused from one request to the next.
    explicit RequestParser(ParsedRequest& into) : m_(into) { m_.clear(); }
    // Not delegating to the above: its argument would name own_ before any base or member is built.
    RequestParser() : m_(own_) { m_.clear(); }
    RequestParser(const RequestParser&) = delete;
    RequestParser& operator=(const RequestParser&) = delete;

    const ParsedRequest& get() const { return m_; }
    // Why the parse failed when Beast's error code cannot say it: the 400's message; else empty.
    std::string_view refusal() const { return refusal_; }

private:
    // Each field's name and value length as basic_fields bounds them, which the session's 431 keeps.
    static constexpr std::size_t longest = std::numeric_limits<std::uint16_t>::max() - 2;
    static constexpr std::size_t body_reserved_ahead = 1024 * 1024;
    static constexpr std::size_t text_room = 1024;   // a typical head's method, target and fields
    static constexpr std::size_t field_room = 16;

    void on_request_impl(boost::beast::http::verb verb, boost::beast::string_view method, boost::beast::string_view target,
                         int version, boost::beast::error_code&) override {
        if (m_.text_.capacity() < text_room) m_.text_.reserve(text_room);
        if (m_.fields_.capacity() < field_room) m_.fields_.reserve(field_room);
        m_.verb_ = verb;
        m_.method_ = m_.keep(method);
        m_.target_ = m_.keep(target);
        m_.version_ = unsigned(version);
    }

    void on_response_impl(int, boost::beast::string_view, int, boost::beast::error_code&) override {}

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
        // A chunked body's trailer: stored, a Host or an Authorization sent after the body would
        // stand as if sent before it. RFC 9110 section 6.5.1 forbids merging fields not defined for
        // it, and no route reads a trailer: dropped.
        if (is_header_done()) return;
        ParsedRequest::Span n = m_.keep(name);
        m_.fields_.push_back({f, n, m_.keep(value)});
    }

    void on_header_impl(boost::beast::error_code&) override {}

    void on_body_init_impl(const boost::optional<std::uint64_t>& length, boost::beast::error_code&) override {
        if (length)
            m_.body_.reserve(std::size_t(std::min<std::uint64_t>(*length, body_reserved_ahead)) + min_body_padding);
    }

    std::size_t on_body_impl(boost::beast::string_view body, boost::beast::error_code&) override {
        m_.body_.append(body);
        return body.size();
    }

    void on_chunk_header_impl(std::uint64_t, boost::beast::string_view, boost::beast::error_code&) override {}

    std::size_t on_chunk_body_impl(std::uint64_t, boost::beast::string_view body, boost::beast::error_code&) override {
        m_.body_.append(body);
        return body.size();
    }

    // A body that grew (chunked, or past what was reserved) may have filled its room.
    void on_finish_impl(boost::beast::error_code&) override {
        std::string& b = m_.body_;
        if (!b.empty() && b.capacity() - b.size() < min_body_padding) b.reserve(b.size() + min_body_padding);
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

    ParsedRequest own_;   // when none is given (tests, the fuzz target)
    ParsedRequest& m_;
    std::string_view refusal_;
};

}  // namespace agente::core
