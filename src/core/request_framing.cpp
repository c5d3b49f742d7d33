#include "core/request_framing.hpp"

#include <boost/url/grammar/charset.hpp>
#include <boost/url/grammar/ci_string.hpp>
#include <boost/url/grammar/digit_chars.hpp>
#include <boost/url/grammar/lut_chars.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/rfc/sub_delim_chars.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

#include <charconv>

namespace agente::core {

namespace urls = boost::urls;
namespace grammar = boost::urls::grammar;

namespace {

// RFC 9110 section 5.6.2: tchar, what a token (a transfer coding's name) is made of.
constexpr grammar::lut_chars tchars("!#$%&'*+-.^_`|~0123456789"
                                    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");

Framing refuse(int status, std::string_view reason) {
    Framing f;
    f.status = status;
    f.reason = reason;
    f.close = true;
    return f;
}

bool blank(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
    while (!s.empty() && blank(s.front())) s.remove_prefix(1);
    while (!s.empty() && blank(s.back())) s.remove_suffix(1);
    return s;
}

// What the Transfer-Encoding lines say, coding by coding.
struct Codings {
    int count = 0;                 // codings named, empty list elements aside
    int chunked = 0;               // how many of them are a bare `chunked`
    bool last_is_chunked = false;
    bool malformed = false;        // an element that is no `token *( OWS ";" ... )`
};

// transfer-coding = token *( OWS ";" OWS transfer-parameter ), in a list (RFC 9112 section 6.1,
// RFC 9110 section 5.6.1: empty elements are allowed and ignored). Parameters are not parsed:
// a coding that has any is refused whatever they say, since `chunked` takes none and we decode
// no other coding.
Codings read_codings(FieldLines lines) {
    Codings c;
    for (std::string_view line : lines) {
        for (std::size_t start = 0; start <= line.size();) {
            std::size_t comma = std::min(line.find(',', start), line.size());
            std::string_view element = trim(line.substr(start, comma - start));
            start = comma + 1;
            if (element.empty()) continue;
            const char* name_end = grammar::find_if_not(element.data(), element.data() + element.size(), tchars);
            std::string_view name(element.data(), std::size_t(name_end - element.data()));
            std::string_view rest = trim(element.substr(name.size()));
            if (name.empty() || (!rest.empty() && rest.front() != ';')) c.malformed = true;
            bool chunked = rest.empty() && grammar::ci_is_equal(name, std::string_view("chunked"));
            ++c.count;
            c.chunked += chunked;
            c.last_is_chunked = chunked;
        }
    }
    return c;
}

// RFC 9112 sections 6.1 and 6.3: the body is chunked only when chunked is the last coding; any
// other framing of a Transfer-Encoding request is ambiguous, as is one that also has a length.
Framing frame_by_transfer_encoding(const RequestHead& head) {
    if (head.version < 11) return refuse(400, "Transfer-Encoding in an HTTP/1.0 request");
    // Allowed with chunked read first, then the connection closed; refused instead, as gunicorn
    // does: a proxy in front may have framed the body by the length, and whatever follows is then
    // not what the client sent (RFC 9112 section 6.2: a sender MUST NOT send both).
    if (!head.content_length.empty()) return refuse(400, "both Transfer-Encoding and Content-Length");
    Codings c = read_codings(head.transfer_encoding);
    if (c.malformed || c.count == 0) return refuse(400, "malformed Transfer-Encoding");
    if (c.chunked > 1) return refuse(400, "chunked applied more than once");
    if (!c.last_is_chunked) return refuse(400, "the last transfer coding is not chunked");
    if (c.count > 1) return refuse(501, "transfer coding not supported (only chunked is)");
    Framing f;
    f.body = BodyFraming::chunked;
    return f;
}

// RFC 9112 section 6.3 item 5; RFC 9110 section 8.6 allows a list of equal values, refused here
// as gunicorn does: no client needs it, and a proxy may have read the list otherwise.
Framing frame_by_length(const RequestHead& head) {
    if (head.content_length.size() > 1) return refuse(400, "more than one Content-Length");
    std::string_view v = head.content_length.front();
    Framing f;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), f.length);
    if (v.empty() || ec != std::errc() || end != v.data() + v.size()) return refuse(400, "malformed Content-Length");
    f.body = f.length ? BodyFraming::length : BodyFraming::none;
    return f;
}

// reg-name's characters but pct-encoded: what nearly every Host is made of (a name, or an IPv4
// address, which reads as a reg-name too).
constexpr grammar::lut_chars plain_host_chars = urls::unreserved_chars + urls::sub_delim_chars;

// RFC 9110 section 7.2: uri-host [ ":" port ], which is an authority without userinfo. A host of
// those characters, with a port of digits or none, is one at a glance; anything else (a bracketed
// IPv6 literal, a %-escape, a wrong character) is for Boost.URL to judge, whose parse costs some
// 1,400 instructions a request more.
bool valid_host(std::string_view host) {
    const char* end = host.data() + host.size();
    const char* colon = grammar::find_if_not(host.data(), end, plain_host_chars);
    if (colon == end || (*colon == ':' && grammar::find_if_not(colon + 1, end, grammar::digit_chars) == end))
        return true;
    auto authority = urls::parse_authority(host);
    return authority && !authority->has_userinfo();
}

}  // namespace

Framing frame_request(const RequestHead& head) {
    Framing f;
    if (!head.transfer_encoding.empty()) f = frame_by_transfer_encoding(head);
    else if (!head.content_length.empty()) f = frame_by_length(head);
    if (!f.ok()) return f;

    // RFC 9112 section 3.2.
    if (head.host.size() > 1) return refuse(400, "more than one Host");
    if (head.host.empty() && head.version >= 11) return refuse(400, "no Host in an HTTP/1.1 request");
    if (!head.host.empty() && !valid_host(head.host.front())) return refuse(400, "invalid Host");
    if (!head.host.empty()) f.host = head.host.front();

    // RFC 9112 section 3.2: origin-form is the rule, asterisk-form is for OPTIONS and authority-form
    // for CONNECT (routed, and refused there, like any method no route takes); anything else must
    // be an absolute http(s) URI with a host, whose authority then wins over Host (section 3.2.2).
    std::string_view target = head.target;
    if (target.starts_with('/') || head.method == "CONNECT") return f;
    if (target == "*") return head.method == "OPTIONS" ? f : refuse(400, "asterisk-form target without OPTIONS");
    auto uri = urls::parse_absolute_uri(target);
    if (!uri || (uri->scheme_id() != urls::scheme::http && uri->scheme_id() != urls::scheme::https) ||
        !uri->has_authority() || uri->encoded_host().empty() || uri->has_userinfo())
        return refuse(400, "invalid request target");
    f.host = uri->encoded_authority();
    std::string_view path = uri->encoded_path();
    f.target = path.empty() ? "/" : path;
    if (uri->has_query()) f.target.append("?").append(uri->encoded_query());
    return f;
}

}  // namespace agente::core
