#include "core/access_format.hpp"

#include <boost/beast/core/string.hpp>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdlib>
#include <utility>

namespace agente::core {

namespace {

// The widest a number can be written: 2^64 - 1 has 20 digits.
constexpr std::size_t widest_number = 20;
// An escaped byte takes four: \xHH.
constexpr std::size_t widest_escape = 4;

constexpr std::array<bool, 256> escaped_bytes = [] {
    std::array<bool, 256> t{};
    for (int c = 0; c < 256; ++c) t[c] = c < 0x20 || c >= 0x7f || c == '"' || c == '\\';
    return t;
}();

std::string_view or_dash(std::string_view v) { return v.empty() ? std::string_view("-") : v; }

char* put(char* out, std::string_view s) {
    for (char c : s) *out++ = c;
    return out;
}

char* put_number(char* out, std::uint64_t n) { return std::to_chars(out, out + widest_number, n).ptr; }

// gunicorn's atoms: %(name)s and %({header}i)s forms, everything else literal. A name of one letter
// is an atom; {name} followed by i, o or e names a header or a variable; anything else prints "-".
struct Parsed {
    char kind;                                 // '\0' literal, or the atom's letter
    std::string text;                          // the literal, or the name inside {}
};

std::vector<Parsed> parse_format(std::string_view fmt) {
    std::vector<Parsed> out;
    std::string literal;
    for (std::size_t i = 0; i < fmt.size(); ++i) {
        if (fmt.compare(i, 2, "%(") == 0) {
            auto close = fmt.find(")s", i);
            if (close != std::string_view::npos) {
                std::string name(fmt.substr(i + 2, close - i - 2));
                if (!literal.empty()) out.push_back({'\0', std::exchange(literal, {})});
                if (name.size() > 3 && name.front() == '{' && name[name.size() - 2] == '}')
                    out.push_back({name.back(), name.substr(1, name.size() - 3)});
                else if (name.size() == 1)
                    out.push_back({name[0], ""});
                else
                    out.push_back({'\0', "-"});  // unknown atom: gunicorn prints "-"
                i = close + 1;
                continue;
            }
        }
        literal += fmt[i];
    }
    if (!literal.empty()) out.push_back({'\0', literal});
    return out;
}

std::string escaped(std::string_view value) {
    std::string out(value.size() * widest_escape, '\0');
    out.resize(std::size_t(escape_log_value(out.data(), value) - out.data()));
    return out;
}

}  // namespace

std::string_view header_in_head(std::string_view head, std::string_view name) {
    constexpr std::string_view crlf = "\r\n";
    std::size_t at = head.find(crlf);   // past the status line
    while (at != std::string_view::npos) {
        at += crlf.size();
        std::size_t end = head.find(crlf, at);
        if (end == std::string_view::npos) break;
        std::string_view line = head.substr(at, end - at);
        std::size_t colon = line.find(':');
        if (colon == name.size() && boost::beast::iequals(line.substr(0, colon), name)) {
            std::string_view value = line.substr(colon + 1);
            while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
            return value;
        }
        at = end;
    }
    return {};
}

char* escape_log_value(char* out, std::string_view value) {
    static constexpr char hex[] = "0123456789ABCDEF";  // nginx's \x22, in capitals
    for (char ch : value) {
        auto c = static_cast<unsigned char>(ch);
        if (escaped_bytes[c]) {
            *out++ = '\\';
            *out++ = 'x';
            *out++ = hex[c >> 4];
            *out++ = hex[c & 0xf];
        } else {
            *out++ = ch;
        }
    }
    return out;
}

AccessFormat::AccessFormat(std::string_view format) {
    for (auto& [kind, text] : parse_format(format)) {
        switch (kind) {
            case '\0': add_text(text); break;
            case 'l': case 'u': add_text("-"); break;
            // The worker's pid and its environment do not change: both are text from the start.
            case 'p': add_text("<" + std::to_string(::getpid()) + ">"); break;
            case 'e': { const char* v = std::getenv(text.c_str()); add_text(v ? escaped(v) : "-"); break; }
            case 'h': ops_.push_back({Atom::remote, {}}); break;
            case 't': ops_.push_back({Atom::time, {}}); break;
            case 'r': ops_.push_back({Atom::request_line, {}}); break;
            case 'm': ops_.push_back({Atom::method, {}}); break;
            case 'U': ops_.push_back({Atom::path, {}}); break;
            case 'q': ops_.push_back({Atom::query, {}}); break;
            case 'H': ops_.push_back({Atom::version, {}}); break;
            case 's': ops_.push_back({Atom::status, {}}); break;
            case 'B': ops_.push_back({Atom::bytes, {}}); break;
            case 'b': ops_.push_back({Atom::bytes_or_dash, {}}); break;
            case 'f': ops_.push_back({Atom::referer, {}}); break;
            case 'a': ops_.push_back({Atom::user_agent, {}}); break;
            case 'T': ops_.push_back({Atom::seconds, {}}); timed_ = true; break;
            case 'M': ops_.push_back({Atom::milliseconds, {}}); timed_ = true; break;
            case 'D': ops_.push_back({Atom::microseconds, {}}); timed_ = true; break;
            case 'L': ops_.push_back({Atom::seconds_decimal, {}}); timed_ = true; break;
            case 'i': ops_.push_back({Atom::request_header, std::move(text)}); break;
            case 'o': ops_.push_back({Atom::response_header, std::move(text)}); break;
            default: add_text("-"); break;
        }
    }
    values_.resize(ops_.size());
}

// Adjacent literals become one op.
void AccessFormat::add_text(std::string_view text) {
    if (!ops_.empty() && ops_.back().atom == Atom::text)
        ops_.back().text += text;
    else
        ops_.push_back({Atom::text, std::string(text)});
}

// gunicorn's %(t)s, [23/Nov/2026:13:11:49 +0000]: local time, as strftime's %z writes the zone.
std::string_view AccessFormat::time_text(std::time_t when) {
    if (when != time_second_) {
        time_second_ = when;
        std::tm tm{};
        ::localtime_r(&when, &tm);
        char buf[48];
        std::size_t n = std::strftime(buf, sizeof buf, "[%d/%b/%Y:%H:%M:%S %z]", &tm);
        time_text_.assign(buf, n);
    }
    return time_text_;
}

std::size_t AccessFormat::prepare(const AccessRecord& r) {
    const Request& q = *r.request;
    std::size_t most = 1;  // the newline
    for (std::size_t i = 0; i < ops_.size(); ++i) {
        const Op& op = ops_[i];
        std::string_view v;
        switch (op.atom) {
            case Atom::text: most += op.text.size(); continue;
            case Atom::time: v = time_text(r.time ? r.time : std::time(nullptr)); values_[i] = v; most += v.size(); continue;
            case Atom::request_line:
                most += widest_escape * (q.method().size() + q.target().size() + r.version.size()) + 2;
                continue;
            case Atom::status: case Atom::bytes: case Atom::bytes_or_dash: case Atom::seconds:
            case Atom::milliseconds: case Atom::microseconds:
                most += widest_number;
                continue;
            case Atom::seconds_decimal: most += widest_number + 7; continue;  // ".123456"
            case Atom::remote: v = q.remote_addr(); break;
            case Atom::method: v = q.method(); break;
            case Atom::path: v = q.path(); break;
            case Atom::query: v = q.query(); break;
            case Atom::version: v = r.version; break;
            case Atom::referer: v = or_dash(q.header("Referer")); break;
            case Atom::user_agent: v = or_dash(q.header("User-Agent")); break;
            case Atom::request_header: v = or_dash(q.header(op.text)); break;
            case Atom::response_header:
                v = or_dash(r.response_header ? r.response_header(r.response_context, op.text) : std::string_view());
                break;
        }
        values_[i] = v;
        most += widest_escape * v.size();
    }
    return most;
}

char* AccessFormat::write(char* out, const AccessRecord& r) const {
    const Request& q = *r.request;
    auto us = std::uint64_t(std::max<std::int64_t>(0, r.duration.count()));
    for (std::size_t i = 0; i < ops_.size(); ++i) {
        switch (ops_[i].atom) {
            case Atom::text: out = put(out, ops_[i].text); break;
            case Atom::time: out = put(out, values_[i]); break;
            case Atom::request_line:
                out = escape_log_value(out, q.method());
                *out++ = ' ';
                out = escape_log_value(out, q.target());
                *out++ = ' ';
                out = escape_log_value(out, r.version);
                break;
            case Atom::status: out = put_number(out, std::uint64_t(std::max(0, r.status))); break;
            case Atom::bytes: out = put_number(out, r.bytes); break;
            case Atom::bytes_or_dash:
                if (r.bytes) out = put_number(out, r.bytes);
                else *out++ = '-';
                break;
            case Atom::seconds: out = put_number(out, us / 1'000'000); break;
            case Atom::milliseconds: out = put_number(out, us / 1000); break;
            case Atom::microseconds: out = put_number(out, us); break;
            case Atom::seconds_decimal: {
                out = put_number(out, us / 1'000'000);
                *out++ = '.';
                char micro[8];
                char* end = std::to_chars(micro, micro + sizeof micro, 1'000'000 + us % 1'000'000).ptr;
                out = put(out, std::string_view(micro + 1, end));  // six digits, zero-padded
                break;
            }
            default: out = escape_log_value(out, values_[i]); break;
        }
    }
    *out++ = '\n';
    return out;
}

std::string AccessFormat::format(const AccessRecord& r) {
    std::string line(prepare(r), '\0');
    line.resize(std::size_t(write(line.data(), r) - line.data()) - 1);
    return line;
}

}  // namespace agente::core
