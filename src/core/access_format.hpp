// The access log's line format: gunicorn's access_log_format atoms (%(h)s %(t)s "%(r)s" %(s)s ...)
// compiled once into a list of ops, as nginx's log module does, and a line written in one pass into
// room sized beforehand. Values from the request are escaped as nginx escapes them: `"`, `\`, control
// and non-ASCII bytes become \xHH, so a User-Agent cannot forge a field or a line.
#pragma once

#include <agente/handler.hpp>

#include <chrono>
#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

namespace agente::core {

struct AccessRecord {
    const Request* request = nullptr;
    std::string_view version;                  // "HTTP/1.1"
    int status = 0;
    std::uint64_t bytes = 0;                   // response body bytes
    std::chrono::microseconds duration{0};     // set when AccessFormat::timed()
    std::time_t time = 0;                      // for %(t)s; 0: now
    // Response header lookup, for %({name}o)s.
    std::string_view (*response_header)(const void* context, std::string_view name) = nullptr;
    const void* response_context = nullptr;
};

// The value of header field `name` (any case) in a serialized response head ("HTTP/1.1 200 OK\r\n"
// then "Name: value\r\n" lines), "" when absent: the session looks %({name}o)s up in the head it
// sent, so that logging a response header costs nothing unless the format asks for one.
std::string_view header_in_head(std::string_view head, std::string_view name);

// `"`, `\`, bytes below 0x20 and from 0x7f up as \xHH, the rest as is; `out` has room for 4 bytes
// per byte of `value`. Returns the end of what was written.
char* escape_log_value(char* out, std::string_view value);

class AccessFormat {
public:
    explicit AccessFormat(std::string_view format);

    // A line is two calls: prepare() looks each value up once and returns the most the line can
    // take (every value's bytes escaped, every number at its widest, the newline); write() then puts
    // the line and its newline at `out` and returns its end. Sizing for the worst case costs no
    // second pass over the values, where nginx counts the escapes first.
    std::size_t prepare(const AccessRecord& record);
    char* write(char* out, const AccessRecord& record) const;

    // The line alone, without its newline (tests, and whoever wants one line as a string).
    std::string format(const AccessRecord& record);

    // Whether a duration atom is used: the caller reads the clock only then.
    bool timed() const { return timed_; }

private:
    enum class Atom : std::uint8_t {
        text, remote, time, request_line, method, path, query, version, status, bytes, bytes_or_dash,
        referer, user_agent, seconds, milliseconds, microseconds, seconds_decimal, request_header,
        response_header,
    };
    struct Op {
        Atom atom;
        std::string text;                      // the literal (escaped when it came from a value) or {name}
    };
    void add_text(std::string_view text);
    std::string_view time_text(std::time_t when);

    std::vector<Op> ops_;
    std::vector<std::string_view> values_;     // per op, filled by prepare(), read by write()
    bool timed_ = false;
    std::time_t time_second_ = -1;             // %(t)s is formatted once a second
    std::string time_text_;
};

}  // namespace agente::core
