// The configuration: one table of settings (name, flags, kind, field) drives the file reader, the
// command line, --print-config, --help and the "did you mean" suggestions, so a new setting is one row.
#include <agente/config.hpp>
#include <agente/shared.hpp>

#include "core/bind_address.hpp"

#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>
#include <simdjson.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <string_view>
#include <utility>
#include <variant>

namespace agente {

namespace {

std::string place(const std::string& file, int line) {
    if (file.empty()) return "";
    return line > 0 ? file + ":" + std::to_string(line) + ": " : file + ": ";
}

}  // namespace

ConfigError::ConfigError(std::string file, int line, const std::string& message)
    : std::runtime_error(place(file, line) + message), file_(std::move(file)), line_(line) {}

namespace {

const std::string kCommandLine = "command line";
const std::string kEnvironment = "AGENTE_HIBRIDO_CMD_ARGS";

// ---- values and where they came from -------------------------------------------------------------

// "server.conf:7: workers" or "command line: --workers": everything an error message needs.
struct Origin {
    std::string file;
    int line = 0;
    std::string name;  // the setting (file) or the flag as typed (command line)

    [[noreturn]] void fail(const std::string& what) const { throw ConfigError(file, line, name + ": " + what); }
};

// Where each setting got its value last (a later source overrides), for the checks that look at
// several settings at once.
using Origins = std::map<std::string, Origin, std::less<>>;

int line_of(const toml::node& node) { return int(node.source().begin.line); }

// A TOML basic string, so that messages quote exactly what print_config would write.
std::string quote(std::string_view s) {
    std::string out = "\"";
    for (char ch : s) {
        switch (ch) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\t': out += "\\t"; break;
            case '\r': out += "\\r"; break;
            default:
                if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04X", static_cast<unsigned char>(ch));
                    out += buf;
                } else {
                    out += ch;
                }
        }
    }
    return out + "\"";
}

// As quote(), then each byte past ASCII as \xNN: for text that is not UTF-8, so cannot be shown as is.
std::string quote_bytes(std::string_view s) {
    std::string out;
    for (char ch : quote(s)) {
        if (static_cast<unsigned char>(ch) < 0x80) {
            out += ch;
        } else {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02X", static_cast<unsigned char>(ch));
            out += buf;
        }
    }
    return out;
}

std::string show(const toml::node& node) {
    if (auto s = node.as_string()) return quote(s->get());
    if (node.is_table()) return "a table";
    std::ostringstream os;
    node.visit([&](const auto& v) { os << v; });
    return os.str();
}

// One value to assign: a node of the file, or the text after a flag.
struct Input {
    const toml::node* node = nullptr;
    std::string text;
    Origin origin;

    std::string shown() const { return node ? show(*node) : quote(text); }
    const std::string* string_value() const {
        if (node) return node->is_string() ? &node->as_string()->get() : nullptr;
        // server.conf is TOML, so UTF-8, and --print-config writes every value there: text from the
        // command line or the environment must be UTF-8 too (the file's own is, or toml++ refused it).
        if (!simdjson::validate_utf8(text.data(), text.size()))
            origin.fail("expected UTF-8 text, got " + quote_bytes(text));
        return &text;
    }
    Input element(const toml::node& n) const { return {&n, {}, {origin.file, line_of(n), origin.name}}; }
    Input part(std::string t) const { return {nullptr, std::move(t), origin}; }
};

// ---- the settings --------------------------------------------------------------------------------

enum class Kind { integer, bytes, mode, text, level, addresses, ips, flag, files, engine, secret, secret_env, secret_file };

using Field = std::variant<int Config::*, std::uint64_t Config::*, std::string Config::*,
                           std::vector<std::string> Config::*, bool Config::*>;

struct Setting {
    std::string_view name;
    Kind kind;
    Field field;
    std::vector<std::string_view> flags;
    std::string_view metavar;
    std::int64_t min, max;
    std::string_view help;
    // secret_env and secret_file: where the secret they name is put (the field keeps the name).
    std::string Config::*secret = nullptr;
};

constexpr std::int64_t kInt = INT_MAX;
constexpr std::int64_t kInt64 = std::numeric_limits<std::int64_t>::max();

const std::vector<Setting>& settings() {
    static const std::vector<Setting> table = {
        {"bind", Kind::addresses, &Config::bind, {"-b", "--bind"}, "ADDRESS", 0, 0,
         "The socket to bind: HOST:PORT, [ADDRESS]:PORT or unix:PATH; https://HOST:PORT serves TLS. Repeat for "
         "several."},
        {"backlog", Kind::integer, &Config::backlog, {"--backlog"}, "INT", 1, kInt,
         "The maximum number of pending connections."},
        {"certfile", Kind::text, &Config::certfile, {"--certfile"}, "FILE", 0, 0,
         "The TLS certificate chain (PEM). Serves TLS on every bind address, or on the https:// ones."},
        {"keyfile", Kind::text, &Config::keyfile, {"--keyfile"}, "FILE", 0, 0,
         "The TLS private key (PEM); empty: it is in certfile."},
        {"ca_certs", Kind::text, &Config::ca_certs, {"--ca-certs"}, "FILE", 0, 0,
         "The CAs (PEM) that client certificates are verified against."},
        {"cert_reqs", Kind::integer, &Config::cert_reqs, {"--cert-reqs"}, "INT", 0, 2,
         "Client certificates: 0 not asked, 1 verified when sent, 2 required."},
        {"ciphers", Kind::text, &Config::ciphers, {"--ciphers"}, "STRING", 0, 0,
         "The OpenSSL cipher list for TLS 1.2 (TLS 1.3 keeps its suites); empty: OpenSSL's default."},
        {"workers", Kind::integer, &Config::workers, {"-w", "--workers"}, "INT", 1, max_http_slots,
         "The number of worker processes."},
        {"worker_connections", Kind::integer, &Config::worker_connections, {"--worker-connections"}, "INT", 1,
         kInt, "The maximum number of simultaneous clients per worker."},
        {"timeout", Kind::integer, &Config::timeout, {"-t", "--timeout"}, "INT", 0, kInt,
         "Workers silent for more than this many seconds are killed and restarted. 0 disables."},
        {"graceful_timeout", Kind::integer, &Config::graceful_timeout, {"--graceful-timeout"}, "INT", 0, kInt,
         "Seconds a stopping or recycled worker gets to finish its requests."},
        {"keepalive", Kind::integer, &Config::keepalive, {"--keep-alive"}, "INT", 0, kInt,
         "Seconds to wait for the next request on a keep-alive connection."},
        {"max_requests", Kind::integer, &Config::max_requests, {"--max-requests"}, "INT", 0, kInt,
         "Requests a worker serves before it is recycled. 0 disables."},
        {"max_requests_jitter", Kind::integer, &Config::max_requests_jitter, {"--max-requests-jitter"}, "INT", 0,
         kInt, "A random 0..N added to max_requests per worker, so workers do not recycle together."},
        {"max_draining", Kind::integer, &Config::max_draining, {"--max-draining"}, "INT", 1, kInt,
         "Recycled workers allowed to drain at the same time (extension)."},
        {"boot_timeout", Kind::integer, &Config::boot_timeout, {"--boot-timeout"}, "INT", 1, kInt,
         "Seconds a new worker gets to report ready (extension)."},
        {"reload", Kind::flag, &Config::reload, {"--reload"}, "", 0, 0,
         "Reload (as on SIGHUP) when the binary, the config file or a reload_extra_files entry changes "
         "on disk. For development."},
        {"reload_extra_files", Kind::files, &Config::reload_extra_files, {"--reload-extra-file"}, "FILES", 0, 0,
         "More files whose change makes --reload reload. Repeat for several."},
        {"reload_engine", Kind::engine, &Config::reload_engine, {"--reload-engine"}, "STRING", 0, 0,
         "How --reload watches: 'auto' or 'inotify' (the same here)."},
        {"dirty_workers", Kind::integer, &Config::dirty_workers, {"--dirty-workers"}, "INT", 0, max_dirty_slots,
         "The number of dirty worker processes, for the app's blocking jobs. 0 means no pool."},
        {"dirty_threads", Kind::integer, &Config::dirty_threads, {"--dirty-threads"}, "INT", 1, 1024,
         "Jobs a dirty worker runs at the same time, one thread each."},
        {"dirty_timeout", Kind::integer, &Config::dirty_timeout, {"--dirty-timeout"}, "INT", 0, kInt,
         "Seconds a job may run (and a dirty worker stay silent) before its worker is killed and "
         "replaced. 0 disables."},
        {"dirty_graceful_timeout", Kind::integer, &Config::dirty_graceful_timeout, {"--dirty-graceful-timeout"},
         "INT", 0, kInt, "Seconds a stopping or replaced dirty worker gets to finish its jobs."},
        {"dirty_backlog", Kind::integer, &Config::dirty_backlog, {"--dirty-backlog"}, "INT", 1, 65535,
         "Calls waiting for a free dirty thread; more are refused at once (extension)."},
        {"limit_request_line", Kind::integer, &Config::limit_request_line, {"--limit-request-line"}, "INT", 0, 8190,
         "The maximum size of the HTTP request line in bytes; 0 removes the check."},
        {"limit_request_fields", Kind::integer, &Config::limit_request_fields, {"--limit-request-fields"}, "INT", 0,
         32768, "The maximum number of request header fields; 0 removes the check."},
        {"limit_request_field_size", Kind::integer, &Config::limit_request_field_size,
         {"--limit-request-field_size", "--limit-request-field-size"}, "INT", 0, 65536,
         "The maximum size of a request header field in bytes; 0 removes the check."},
        {"limit_request_body", Kind::bytes, &Config::limit_request_body, {"--limit-request-body"}, "BYTES", 0,
         kInt64, "The maximum size of a request body in bytes, answered 413. 0 means unlimited (extension)."},
        {"header_timeout", Kind::integer, &Config::header_timeout, {"--header-timeout"}, "INT", 1, kInt,
         "Seconds a client gets to send a request's headers (extension)."},
        {"accesslog", Kind::text, &Config::accesslog, {"--access-logfile"}, "FILE", 0, 0,
         "The access log file; '-' is stdout, empty is off."},
        {"errorlog", Kind::text, &Config::errorlog, {"--error-logfile", "--log-file"}, "FILE", 0, 0,
         "The error log file; '-' is stderr."},
        {"loglevel", Kind::level, &Config::loglevel, {"--log-level"}, "LEVEL", 0, 0,
         "The error log level: debug, info, warning, error or critical."},
        {"access_log_format", Kind::text, &Config::access_log_format, {"--access-logformat"}, "STRING", 0, 0,
         "The access log format (gunicorn's atoms)."},
        {"access_log_buffer", Kind::bytes, &Config::access_log_buffer, {"--access-log-buffer"}, "BYTES", 0,
         1024 * 1024, "Bytes of access log lines a worker gathers before writing them; 0 writes each line at once (extension)."},
        {"access_log_flush", Kind::integer, &Config::access_log_flush, {"--access-log-flush"}, "INT", 1, 3600,
         "Seconds a buffered access log line waits at most before it is written (extension)."},
        {"proc_name", Kind::text, &Config::proc_name, {"-n", "--name"}, "STRING", 0, 0,
         "The name shown in process titles; empty means agente-hibrido."},
        {"pidfile", Kind::text, &Config::pidfile, {"-p", "--pid"}, "FILE", 0, 0,
         "A file to write the master's PID to."},
        {"user", Kind::text, &Config::user, {"-u", "--user"}, "USER", 0, 0,
         "Switch to this user after binding."},
        {"group", Kind::text, &Config::group, {"-g", "--group"}, "GROUP", 0, 0,
         "Switch to this group after binding."},
        {"umask", Kind::mode, &Config::umask, {"-m", "--umask"}, "INT", 0, 0777,
         "The umask of the server's processes, in octal (\"022\")."},
        {"forwarded_allow_ips", Kind::ips, &Config::forwarded_allow_ips, {"--forwarded-allow-ips"}, "STRING", 0, 0,
         "Peers trusted to set X-Forwarded-* headers, comma-separated; '*' trusts all."},
        {"metrics_token", Kind::secret, &Config::metrics_token, {"--metrics-token"}, "TOKEN", 0, 0,
         "The Bearer token GET /metrics requires. Without one, /metrics is answered only when every "
         "listening socket is loopback (extension)."},
        {"metrics_token_env", Kind::secret_env, &Config::metrics_token_env, {"--metrics-token-env"}, "NAME", 0, 0,
         "An environment variable holding metrics_token (extension).", &Config::metrics_token},
        {"metrics_token_file", Kind::secret_file, &Config::metrics_token_file, {"--metrics-token-file"}, "FILE", 0, 0,
         "A file holding metrics_token; a relative name is looked up in $CREDENTIALS_DIRECTORY, else beside "
         "the config file (extension).", &Config::metrics_token},
    };
    return table;
}

// gunicorn settings a ported config may carry; a precise "no" beats "unknown setting".
struct Unsupported {
    std::string_view name;
    std::vector<std::string_view> flags;
    std::string_view why;
};

const std::vector<Unsupported>& unsupported() {
    static const std::vector<Unsupported> table = {
        {"worker_class", {"-k", "--worker-class"}, "there is one worker type, an event loop per process"},
        {"threads", {"--threads"}, "each worker is single-threaded; add workers instead"},
        {"daemon", {"-D", "--daemon"}, "run it under systemd or another supervisor instead"},
        {"preload_app", {"--preload"}, "the app is linked in and each worker is a fresh exec"},
        {"dirty_apps", {"--dirty-app"}, "the app is linked in and registers its jobs itself (App::register_jobs)"},
        {"ssl_version", {"--ssl-version"}, "TLS 1.2 and 1.3 are negotiated, nothing older (gunicorn 21+ ignores it too)"},
        {"do_handshake_on_connect", {"--do-handshake-on-connect"},
         "the handshake always runs when the connection is accepted, on the worker's event loop, within "
         "header_timeout"},
        {"suppress_ragged_eofs", {"--suppress-ragged-eofs"},
         "a client that closes without TLS's close_notify is always taken as gone, as gunicorn's default does"},
        {"ssl_context", {}, "a Python hook; the TLS settings are certfile, keyfile, ca_certs, cert_reqs and ciphers"},
    };
    return table;
}

// Flags that are not settings.
struct Command {
    std::optional<Action> action;  // none for -c, which names the file
    std::vector<std::string_view> flags;
    std::string_view metavar;
    std::string_view help;
};

const std::vector<Command>& commands() {
    static const std::vector<Command> table = {
        {Action::help, {"-h", "--help"}, "", "Show this help message and exit."},
        {Action::version, {"-v", "--version"}, "", "Show the version and exit."},
        {std::nullopt, {"-c", "--config"}, "CONFIG", "The TOML config file; without it, the defaults."},
        {Action::check_config, {"--check-config"}, "", "Check the configuration and exit."},
        {Action::print_config, {"--print-config"}, "", "Print the effective configuration as TOML and exit."},
    };
    return table;
}

std::vector<AppSection>& app_sections() {
    static std::vector<AppSection> sections;
    return sections;
}

const Setting* find_setting(std::string_view name) {
    for (const auto& s : settings())
        if (s.name == name) return &s;
    return nullptr;
}

const AppSection* find_section(std::string_view name) {
    for (const auto& a : app_sections())
        if (a.name == name) return &a;
    return nullptr;
}

char lower(char c) { return char(std::tolower(static_cast<unsigned char>(c))); }

std::string lower(std::string s) {
    for (auto& c : s) c = lower(c);
    return s;
}

// ---- "did you mean" ------------------------------------------------------------------------------

std::size_t levenshtein(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t substitute = diagonal + (lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1);
            diagonal = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, substitute});
        }
    }
    return row[b.size()];
}

// Only a close name is worth suggesting: a third of the word may be wrong, at least one letter.
std::string nearest(std::string_view word, const std::vector<std::string_view>& candidates) {
    std::size_t best = std::max<std::size_t>(1, word.size() / 3) + 1;
    std::string_view found;
    for (auto c : candidates) {
        std::size_t d = levenshtein(word, c);
        if (d < best) {
            best = d;
            found = c;
        }
    }
    return std::string(found);
}

std::string did_you_mean(const std::string& suggestion) {
    return suggestion.empty() ? "" : ": did you mean " + quote(suggestion) + "?";
}

// ---- reading one value ---------------------------------------------------------------------------

std::optional<std::int64_t> parse_integer(std::string_view text, int base = 10) {
    std::int64_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v, base);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
    return v;
}

std::string octal(std::int64_t v) {
    if (v < 0) return std::to_string(v);
    std::ostringstream os;
    os << "0o" << std::oct << std::setw(3) << std::setfill('0') << v;
    return os.str();
}

std::string integer_kind(const Setting& s) { return s.min > 0 ? "a positive integer" : "a non-negative integer"; }

void check_range(const Setting& s, const Input& in, std::int64_t v, std::string (*show_number)(std::int64_t)) {
    if (v < s.min) in.origin.fail("expected " + integer_kind(s) + ", got " + show_number(v));
    if (v > s.max) in.origin.fail("expected at most " + show_number(s.max) + ", got " + show_number(v));
}

std::string decimal(std::int64_t v) { return std::to_string(v); }

std::int64_t read_integer(const Setting& s, const Input& in) {
    std::optional<std::int64_t> v;
    if (in.node) {
        if (auto i = in.node->as_integer()) v = i->get();
    } else {
        v = parse_integer(in.text);
    }
    if (!v) in.origin.fail("expected " + integer_kind(s) + ", got " + in.shown());
    check_range(s, in, *v, decimal);
    return *v;
}

// A umask: a TOML integer is taken as is (write 0o022); a string is octal, as the shell's umask.
std::int64_t read_mode(const Setting& s, const Input& in) {
    std::optional<std::int64_t> v;
    if (in.node && in.node->is_integer()) {
        v = in.node->as_integer()->get();
    } else if (const std::string* text = in.string_value()) {
        std::string_view digits = *text;
        if (digits.size() > 2 && (digits.substr(0, 2) == "0o" || digits.substr(0, 2) == "0O")) digits.remove_prefix(2);
        if (!digits.empty() && digits.front() != '-' && digits.front() != '+') v = parse_integer(digits, 8);
    }
    if (!v) in.origin.fail("expected an octal mode like \"022\" or 0o022, got " + in.shown());
    check_range(s, in, *v, octal);
    return *v;
}

std::string read_text(const Input& in) {
    const std::string* text = in.string_value();
    if (!text) in.origin.fail("expected a string, got " + in.shown());
    return *text;
}

std::string read_level(const Input& in) {
    static const std::vector<std::string> levels = {"debug", "info", "warning", "error", "critical"};
    const std::string* text = in.string_value();
    std::string level = text ? lower(*text) : "";
    if (!text || std::find(levels.begin(), levels.end(), level) == levels.end())
        in.origin.fail(R"(expected one of "debug", "info", "warning", "error", "critical", got )" + in.shown());
    return level;
}

// `reload = true` in the file; a flag on the command line (--reload) takes no value and means true.
bool read_flag(const Input& in) {
    if (!in.node) return true;
    auto b = in.node->as_boolean();
    if (!b) in.origin.fail("expected true or false, got " + in.shown());
    return b->get();
}

// gunicorn's reload_engine: its "auto" picks inotify when it can, as we always do; its "poll" (stat
// every file each second) is refused rather than silently watched another way.
std::string read_engine(const Input& in) {
    const std::string* text = in.string_value();
    std::string engine = text ? lower(*text) : "";
    if (engine == "auto" || engine == "inotify") return engine;
    if (engine == "poll")
        in.origin.fail("not supported: \"poll\": changes are watched with inotify (Linux), which sees them at "
                       "once without polling; use \"auto\" or \"inotify\"");
    in.origin.fail(R"(expected "auto" or "inotify", got )" + in.shown());
}

bool all_of(std::string_view s, bool (*ok)(char)) { return std::all_of(s.begin(), s.end(), ok); }
bool host_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_'; }
bool ip_char(char c) { return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.'; }
bool v6_char(char c) { return ip_char(c) || c == '%' || std::isalnum(static_cast<unsigned char>(c)); }

bool is_port(std::string_view port) {
    auto digit = [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; };
    auto number = all_of(port, digit) ? parse_integer(port) : std::nullopt;
    return number && *number <= 65535;
}

std::string unix_address_problem(const std::string& address) {
    constexpr std::size_t kMaxPath = 107;  // sizeof(sockaddr_un::sun_path) - 1 on Linux
    std::size_t length = address.size() - 5;
    if (length == 0) return "expected a socket path after \"unix:\", got " + quote(address);
    if (length > kMaxPath)
        return "expected a socket path of at most " + std::to_string(kMaxPath) + " bytes, got " + quote(address);
    return "";
}

std::string inet_address_problem(const std::string& address) {
    std::string_view view = address;
    bool bracketed = !view.empty() && view.front() == '[';
    std::size_t colon = bracketed ? view.find("]:") : view.rfind(':');
    if (colon == std::string_view::npos)
        return R"(expected "HOST:PORT", "[ADDRESS]:PORT" or "unix:PATH", got )" + quote(address);
    if (bracketed) ++colon;  // past the ']'
    std::string_view host = bracketed ? view.substr(1, colon - 2) : view.substr(0, colon);
    if (bracketed && (host.empty() || !all_of(host, v6_char)))
        return "expected an IPv6 address in brackets, got " + quote(address);
    if (!bracketed && host.find(':') != std::string_view::npos)
        return "expected an IPv6 address in brackets, as in \"[::1]:8000\", got " + quote(address);
    if (!bracketed && !all_of(host, host_char)) return "expected a host name or IP address, got " + quote(address);
    if (!is_port(view.substr(colon + 1))) return "expected a port from 0 to 65535, got " + quote(address);
    return "";
}

// Why `entry` is not a bind address, or "" when it is one.
std::string address_problem(const std::string& entry) {
    auto [scheme, bare] = core::split_scheme(entry);
    if (scheme == core::Scheme::bare && bare.find("://") != std::string_view::npos)
        return R"(expected "https://" or "http://" before a TCP address, got )" + quote(entry);
    std::string address(bare);
    if (address.rfind("unix:", 0) != 0) return inet_address_problem(address);
    if (scheme == core::Scheme::https) return "expected TLS on a TCP address, not a Unix socket, got " + quote(entry);
    return unix_address_problem(address);
}

std::string ip_problem(const std::string& ip) {
    if (ip == "*" || (!ip.empty() && all_of(ip, ip_char))) return "";
    return "expected an IP address or \"*\", got " + quote(ip);
}

std::string list_item_problem(Kind kind, const std::string& value) {
    if (kind == Kind::addresses) return address_problem(value);
    if (kind == Kind::ips) return ip_problem(value);
    return value.empty() ? "expected a file name, got \"\"" : "";
}

std::vector<std::string> split_commas(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string item; std::getline(in, item, ',');) {
        auto first = item.find_first_not_of(" \t");
        if (first == std::string::npos) continue;
        out.push_back(item.substr(first, item.find_last_not_of(" \t") - first + 1));
    }
    return out;
}

// A string or a list of strings; for the IPs a string is also a comma-separated list (gunicorn).
std::vector<std::string> read_list(const Setting& s, const Input& in) {
    std::vector<Input> items;
    if (const std::string* text = in.string_value()) {
        if (s.kind == Kind::ips)
            for (auto& item : split_commas(*text)) items.push_back(in.part(item));
        else
            items.push_back(in);
    } else if (auto array = in.node->as_array()) {
        for (const auto& element : *array) items.push_back(in.element(element));
    } else {
        in.origin.fail("expected a string or a list of strings, got " + in.shown());
    }
    std::vector<std::string> out;
    for (const auto& item : items) {
        std::string value = read_text(item);
        std::string problem = list_item_problem(s.kind, value);
        if (!problem.empty()) item.origin.fail(problem);
        out.push_back(std::move(value));
    }
    if (out.empty() && s.kind == Kind::addresses) in.origin.fail("expected at least one address, got " + in.shown());
    return out;
}

// A token compared with what a client sends in a header: a blank or a control character in it (two
// lines of a file) could never be sent as it is.
std::string checked_secret(std::string secret, const Origin& where) {
    while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r' || secret.back() == ' ' || secret.back() == '\t'))
        secret.pop_back();
    std::size_t first = secret.find_first_not_of(" \t");
    secret.erase(0, first == std::string::npos ? secret.size() : first);
    if (secret.empty()) where.fail("the secret is empty");
    for (unsigned char c : secret)
        if (c <= ' ' || c == 0x7f) where.fail("the secret has a blank or a control character inside it");
    return secret;
}

// Secrets in files: absolute paths as given, relative ones under $CREDENTIALS_DIRECTORY (systemd's
// LoadCredential=), or else beside the config file that names them (the working directory for the
// command line).
std::string secret_path(const std::string& name, const Origin& where) {
    if (!name.empty() && name[0] == '/') return name;
    if (const char* dir = std::getenv("CREDENTIALS_DIRECTORY"); dir && *dir) return std::string(dir) + "/" + name;
    if (where.line == 0) return name;
    auto slash = where.file.rfind('/');
    return slash == std::string::npos ? name : where.file.substr(0, slash + 1) + name;
}

std::string read_secret(const Setting& s, const Input& in) {
    std::string name = read_text(in);
    if (name.empty()) return {};
    if (s.kind == Kind::secret_env) {
        const char* value = std::getenv(name.c_str());
        if (!value || !*value) in.origin.fail("environment variable " + name + " is not set");
        return checked_secret(value, in.origin);
    }
    std::string path = secret_path(name, in.origin);
    std::ifstream file(path);
    if (!file) in.origin.fail("cannot read " + path);
    std::ostringstream text;
    text << file.rdbuf();
    return checked_secret(text.str(), in.origin);
}

// Assigns one value; `append` adds to a list instead (the second -b of a source and after).
void assign(Config& config, const Setting& s, const Input& in, bool append = false) {
    config.origins[std::string(s.name)] = {in.origin.file, in.origin.line, in.origin.name};
    switch (s.kind) {
        case Kind::integer: config.*std::get<int Config::*>(s.field) = int(read_integer(s, in)); return;
        case Kind::bytes: config.*std::get<std::uint64_t Config::*>(s.field) = read_integer(s, in); return;
        case Kind::mode: config.*std::get<int Config::*>(s.field) = int(read_mode(s, in)); return;
        case Kind::text: config.*std::get<std::string Config::*>(s.field) = read_text(in); return;
        case Kind::level: config.*std::get<std::string Config::*>(s.field) = read_level(in); return;
        case Kind::flag: config.*std::get<bool Config::*>(s.field) = read_flag(in); return;
        case Kind::engine: config.*std::get<std::string Config::*>(s.field) = read_engine(in); return;
        case Kind::secret: {
            std::string token = read_text(in);
            config.*std::get<std::string Config::*>(s.field) = token.empty() ? token : checked_secret(token, in.origin);
            return;
        }
        case Kind::secret_env:
        case Kind::secret_file:
            config.*s.secret = read_secret(s, in);
            config.*std::get<std::string Config::*>(s.field) = read_text(in);
            return;
        case Kind::addresses:
        case Kind::files:
        case Kind::ips: {
            auto& list = config.*std::get<std::vector<std::string> Config::*>(s.field);
            auto values = read_list(s, in);
            if (s.kind == Kind::addresses) config.bind_given = true;
            if (!append) list.clear();
            list.insert(list.end(), values.begin(), values.end());
            return;
        }
    }
}

// Where a secret setting's value goes: its own field, or the secret an _env/_file setting names.
std::string Config::*secret_target(const Setting& s) {
    if (s.kind == Kind::secret) return std::get<std::string Config::*>(s.field);
    return s.kind == Kind::secret_env || s.kind == Kind::secret_file ? s.secret : nullptr;
}

// A secret is never printed: "***" when set inline, "" when an _env or _file setting brought it (the
// printout, pasted into a file, reads it from there again).
std::string secret_shown(const Config& config, const Setting& s) {
    auto target = std::get<std::string Config::*>(s.field);
    if ((config.*target).empty()) return "";
    for (const auto& other : settings())
        if (other.secret == target && !(config.*std::get<std::string Config::*>(other.field)).empty()) return "";
    return "***";
}

// The value as TOML, for --print-config and the defaults in --help.
std::string toml_value(const Config& config, const Setting& s) {
    switch (s.kind) {
        case Kind::integer: return std::to_string(config.*std::get<int Config::*>(s.field));
        case Kind::bytes: return std::to_string(config.*std::get<std::uint64_t Config::*>(s.field));
        case Kind::mode: return octal(config.*std::get<int Config::*>(s.field));
        case Kind::text:
        case Kind::level:
        case Kind::engine: return quote(config.*std::get<std::string Config::*>(s.field));
        case Kind::flag: return config.*std::get<bool Config::*>(s.field) ? "true" : "false";
        case Kind::secret_env:
        case Kind::secret_file: return quote(config.*std::get<std::string Config::*>(s.field));
        case Kind::secret: return quote(secret_shown(config, s));
        case Kind::addresses:
        case Kind::files:
        case Kind::ips: {
            std::string out = "[";
            for (const auto& item : config.*std::get<std::vector<std::string> Config::*>(s.field))
                out += (out.size() > 1 ? ", " : "") + quote(item);
            return out + "]";
        }
    }
    return "";
}

// ---- the file ------------------------------------------------------------------------------------

// A worker's config file, and the snapshot its bytes are read from (read_config_from).
std::pair<std::string, std::string>& config_snapshot() {
    static std::pair<std::string, std::string> snapshot;
    return snapshot;
}

toml::table parse_file(const std::string& path) {
    const auto& [snapshot_of, snapshot] = config_snapshot();
    const std::string& source = !snapshot.empty() && path == snapshot_of ? snapshot : path;
    std::error_code ec;
    if (std::filesystem::is_directory(source, ec)) throw ConfigError(path, 0, std::string("cannot read: ") + std::strerror(EISDIR));
    errno = 0;
    std::ifstream in(source, std::ios::binary);
    if (!in) throw ConfigError(path, 0, std::string("cannot open: ") + std::strerror(errno ? errno : ENOENT));
    std::ostringstream text;
    text << in.rdbuf();
    try {
        return toml::parse(text.str(), std::string_view(path));
    } catch (const toml::parse_error& e) {
        throw ConfigError(path, int(e.source().begin.line), std::string(e.description()));
    }
}

std::vector<std::string_view> known_names() {
    std::vector<std::string_view> names;
    for (const auto& s : settings()) names.push_back(s.name);
    for (const auto& a : app_sections()) names.push_back(a.name);
    return names;
}

[[noreturn]] void unknown_setting(const Origin& where) {
    for (const auto& u : unsupported())
        if (u.name == where.name) where.fail("not supported: " + std::string(u.why));
    throw ConfigError(where.file, where.line,
                      "unknown setting " + quote(where.name) + did_you_mean(nearest_setting(where.name)));
}

// The app's tables are moved, not copied: a copy would lose the lines the app's errors point at.
void keep_app_table(toml::table& app, const AppSection& section, toml::node& node, const Origin& where) {
    auto table = node.as_table();
    if (!table) where.fail("expected a table, got " + show(node));
    if (section.validate) section.validate(*table, where.file);
    app.insert_or_assign(section.name, std::move(*table));
}

void apply_file(Config& config, const std::string& path, Origins& origins) {
    toml::table doc = parse_file(path);
    auto app = std::make_shared<toml::table>();
    std::vector<std::pair<std::string Config::*, std::string_view>> secrets;   // one way to give each
    for (auto&& [key, node] : doc) {
        Origin where{path, line_of(node), std::string(key.str())};
        const Setting* s = find_setting(key.str());
        auto target = s ? secret_target(*s) : nullptr;
        if (target && !(node.is_string() && node.as_string()->get().empty())) {
            for (const auto& [seen, name] : secrets)
                if (seen == target) where.fail("give " + std::string(name) + " or " + where.name + ", not both");
            secrets.emplace_back(target, s->name);
        }
        if (s) {
            assign(config, *s, Input{&node, {}, where});
            origins[std::string(s->name)] = where;
        } else if (const AppSection* section = find_section(key.str()))
            keep_app_table(*app, *section, node, where);
        else
            unknown_setting(where);
    }
    config.app = std::move(app);
    config.app_source = path;
}

// ---- the command line and AGENTE_HIBRIDO_CMD_ARGS ------------------------------------------------

// What one flag means: a setting, or a command (-c, --help...).
struct Flag {
    const Setting* setting = nullptr;
    const Command* command = nullptr;
    bool takes_value() const { return setting ? setting->kind != Kind::flag : !command->metavar.empty(); }
};

std::optional<Flag> find_flag(std::string_view flag) {
    for (const auto& s : settings())
        if (std::find(s.flags.begin(), s.flags.end(), flag) != s.flags.end()) return Flag{&s, nullptr};
    for (const auto& c : commands())
        if (std::find(c.flags.begin(), c.flags.end(), flag) != c.flags.end()) return Flag{nullptr, &c};
    return std::nullopt;
}

[[noreturn]] void unknown_flag(const std::string& source, const std::string& flag) {
    for (const auto& u : unsupported())
        if (std::find(u.flags.begin(), u.flags.end(), flag) != u.flags.end())
            throw ConfigError(source, 0, flag + ": not supported: " + std::string(u.why));
    std::string suggestion;
    if (flag.rfind("--", 0) == 0) {
        std::vector<std::string_view> long_flags;
        for (const auto& s : settings()) long_flags.insert(long_flags.end(), s.flags.begin(), s.flags.end());
        for (const auto& c : commands()) long_flags.insert(long_flags.end(), c.flags.begin(), c.flags.end());
        std::erase_if(long_flags, [](std::string_view f) { return f.rfind("--", 0) != 0; });
        suggestion = nearest(flag, long_flags);
    }
    throw ConfigError(source, 0, "unknown option " + quote(flag) + did_you_mean(suggestion));
}

// One flag as given, with its value.
struct Option {
    Flag flag;
    Input input;  // origin: the source, line 0, the flag as typed
};

// One flag word as argparse reads it: "--name=value" and "-nvalue" carry their value, "--name" and
// "-n" do not (it is the next word when the flag takes one).
struct FlagWord {
    std::string name;
    std::optional<std::string> attached;
};

FlagWord split_flag(const std::string& arg) {
    bool is_long = arg[1] == '-';
    std::size_t split = is_long ? arg.find('=') : 2;
    FlagWord w{arg.substr(0, split), std::nullopt};
    if (split < arg.size()) w.attached = arg.substr(split + (is_long ? 1 : 0));
    return w;
}

// "--name=value", "--name value", "-n value" and "-nvalue", as argparse reads them.
std::vector<Option> parse_args(const std::vector<std::string>& args, const std::string& source) {
    std::vector<Option> options;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& arg = args[i];
        if (arg.size() < 2 || arg[0] != '-' || arg == "--")
            throw ConfigError(source, 0, "unexpected argument " + quote(arg));
        auto [name, attached] = split_flag(arg);
        auto flag = find_flag(name);
        if (!flag) unknown_flag(source, name);
        Origin origin{source, 0, name};
        if (!flag->takes_value()) {
            if (attached) origin.fail("takes no value, got " + quote(*attached));
            options.push_back({*flag, {nullptr, "", origin}});
            continue;
        }
        if (!attached && i + 1 >= args.size()) origin.fail("expected a value");
        options.push_back({*flag, {nullptr, attached ? *attached : args[++i], origin}});
    }
    return options;
}

// Words as a POSIX shell splits them (quotes and backslashes; no expansion), as gunicorn's shlex.
class ShellSplitter {
public:
    explicit ShellSplitter(std::string_view text) : text_(text) {}

    std::vector<std::string> words() {
        for (; i_ < text_.size(); ++i_) {
            char ch = text_[i_];
            if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') end_word();
            else if (ch == '\'') single_quoted();
            else if (ch == '"') double_quoted();
            else if (ch == '\\') escaped();
            else add(ch);
        }
        end_word();
        return std::move(words_);
    }

private:
    void add(char ch) {
        word_ += ch;
        in_word_ = true;
    }
    void end_word() {
        if (in_word_) words_.push_back(std::move(word_));
        word_.clear();
        in_word_ = false;
    }
    void single_quoted() {
        auto close = text_.find('\'', i_ + 1);
        if (close == std::string_view::npos) throw ConfigError(kEnvironment, 0, "unterminated single quote");
        word_.append(text_.substr(i_ + 1, close - i_ - 1));
        in_word_ = true;
        i_ = close;
    }
    void double_quoted() {
        in_word_ = true;
        for (++i_; i_ < text_.size() && text_[i_] != '"'; ++i_) {
            char next = i_ + 1 < text_.size() ? text_[i_ + 1] : '\0';
            if (text_[i_] == '\\' && std::string_view("$`\"\\\n").find(next) != std::string_view::npos) {
                if (next != '\n') word_ += next;
                ++i_;
            } else {
                word_ += text_[i_];
            }
        }
        if (i_ >= text_.size()) throw ConfigError(kEnvironment, 0, "unterminated double quote");
    }
    void escaped() {
        if (i_ + 1 >= text_.size()) return add('\\');
        if (text_[++i_] != '\n') add(text_[i_]);  // backslash-newline continues the line
    }

    std::string_view text_;
    std::size_t i_ = 0;
    std::string word_;
    bool in_word_ = false;
    std::vector<std::string> words_;
};

// Lists given by a repeated flag (-b, --reload-extra-file): the first of a source replaces the list,
// the next ones add to it.
bool repeatable(Kind kind) { return kind == Kind::addresses || kind == Kind::files; }

void apply_options(Config& config, const std::vector<Option>& options, Origins& origins) {
    std::vector<const Setting*> given;
    for (const auto& o : options) {
        const Setting* s = o.flag.setting;
        if (!s) continue;
        bool append = repeatable(s->kind) && std::find(given.begin(), given.end(), s) != given.end();
        given.push_back(s);
        assign(config, *s, o.input, append);
        origins[std::string(s->name)] = o.input.origin;
    }
}

// The TLS settings only mean something together; one set without the others it needs would be
// silently unused (gunicorn ignores ca_certs without cert_reqs, and serves no TLS with a keyfile
// alone). Whether the files hold what they should is the master's check (src/core/tls.cpp).
void check_tls(const Config& c, const Origins& origins) {
    auto fail = [&](std::string_view setting, const std::string& what) {
        auto it = origins.find(setting);
        Origin where = it != origins.end() ? it->second : Origin{c.config_path, 0, std::string(setting)};
        where.fail(what);
    };
    if (c.certfile.empty()) {
        for (auto [name, value] : {std::pair{"keyfile", &c.keyfile}, {"ca_certs", &c.ca_certs}, {"ciphers", &c.ciphers}})
            if (!value->empty()) fail(name, "needs certfile, the server's certificate chain");
        if (c.cert_reqs) fail("cert_reqs", "needs certfile, the server's certificate chain");
        for (const auto& entry : c.bind)
            if (core::split_scheme(entry).first == core::Scheme::https)
                fail("bind", quote(entry) + " serves TLS: set certfile (and keyfile)");
        return;
    }
    auto binds = core::bind_addresses(c);
    if (std::none_of(binds.begin(), binds.end(), [](const core::BindAddress& b) { return b.tls; }))
        fail("certfile", "no bind address serves TLS (Unix sockets and http:// addresses never do)");
    if (c.cert_reqs && c.ca_certs.empty())
        fail("cert_reqs", "needs ca_certs, the CAs that client certificates are verified against");
    if (!c.cert_reqs && !c.ca_certs.empty())
        fail("ca_certs", "unused while cert_reqs = 0 asks no client for a certificate: set cert_reqs = 1 "
                         "(verified when sent) or 2 (required)");
}

std::optional<Action> action_of(const std::vector<Option>& options) {
    for (const auto& o : options)
        if (o.flag.command && o.flag.command->action) return o.flag.command->action;
    return std::nullopt;
}

std::optional<std::string> config_path_of(const std::vector<Option>& options) {
    std::optional<std::string> path;
    for (const auto& o : options) {
        if (!o.flag.command || o.flag.command->action) continue;
        if (o.input.text.empty()) o.input.origin.fail("expected a file name");
        path = o.input.text;
    }
    return path;
}

// Defaults < file < environment < command line; `sources` carries the path and the arguments.
Config build(Config sources, const std::vector<Option>& env, const std::vector<Option>& cli) {
    Config config;
    config.config_path = std::move(sources.config_path);
    config.env_args = std::move(sources.env_args);
    config.cli_args = std::move(sources.cli_args);
    config.app = std::make_shared<toml::table>();
    Origins origins;
    if (!config.config_path.empty()) apply_file(config, config.config_path, origins);
    apply_options(config, env, origins);
    apply_options(config, cli, origins);
    check_tls(config, origins);
    return config;
}

bool ends_early(Action action) { return action == Action::help || action == Action::version; }

// ---- printing ------------------------------------------------------------------------------------

bool is_secret(std::string_view key) {
    std::string name = lower(std::string(key));
    for (std::string_view word : {"key", "token", "secret", "password"})
        if (name.find(word) != std::string::npos) return true;
    return false;
}

void mask_secrets(toml::node& node);

void mask_secrets_in_table(toml::table& table) {
    std::vector<toml::key> secrets;
    for (auto&& [key, value] : table) {
        if (is_secret(key.str())) secrets.push_back(key);
        else mask_secrets(value);
    }
    // A whole table under a secret name is masked too: its own keys may not look secret.
    for (const auto& key : secrets) table.insert_or_assign(key, "***");
}

// A URL's password ("postgresql://agente:PASSWORD@db/agente", whatever the key's name): "***" in its
// place. A URL Boost.URL cannot read (libpq's several hosts) but that has userinfo is masked whole.
void mask_url_password(toml::value<std::string>& value) {
    const std::string& text = value.get();
    auto scheme_end = text.find("://");
    if (scheme_end == std::string::npos) return;
    auto parsed = boost::urls::parse_uri(text);
    if (!parsed) {
        if (text.find('@', scheme_end) != std::string::npos) value = text.substr(0, scheme_end) + "://***";
        return;
    }
    if (!parsed->has_password()) return;
    boost::urls::url u(*parsed);
    u.set_password("***");
    value = std::string(u.buffer());
}

void mask_secrets(toml::node& node) {
    if (auto text = node.as_string()) mask_url_password(*text);
    if (auto table = node.as_table()) mask_secrets_in_table(*table);
    if (auto array = node.as_array())
        for (auto& element : *array) mask_secrets(element);
}

std::string flag_list(const std::vector<std::string_view>& flags, std::string_view metavar) {
    std::string out;
    for (auto f : flags) {
        if (!out.empty()) out += ", ";
        out += std::string(f) + (metavar.empty() ? "" : " " + std::string(metavar));
    }
    return out;
}

// One option of --help, argparse's layout: flags, then the help wrapped in a column.
std::string usage_entry(const std::string& flags, std::string help) {
    constexpr std::size_t kColumn = 24, kWidth = 79;
    std::string out = "  " + flags;
    std::string indent(kColumn, ' ');
    out += out.size() + 2 > kColumn ? "\n" + indent : std::string(kColumn - out.size(), ' ');
    std::size_t used = kColumn;
    std::istringstream words(help);
    for (std::string word; words >> word;) {
        bool line_started = used > kColumn;
        if (line_started && used + 1 + word.size() > kWidth) {
            out += "\n" + indent;
            used = kColumn;
        } else if (line_started) {
            out += ' ';
            ++used;
        }
        out += word;
        used += word.size();
    }
    return out + "\n";
}

}  // namespace

// ---- the interface -------------------------------------------------------------------------------

LoadedConfig load_config(const std::vector<std::string>& argv_rest, const std::string& env_cmd_args) {
    LoadedConfig loaded;
    Config& sources = loaded.config;
    sources.cli_args = argv_rest;
    sources.app = std::make_shared<toml::table>();
    auto cli = parse_args(argv_rest, kCommandLine);
    // --help and --version answer before anything else is read, so they work with a broken setup.
    loaded.action = action_of(cli).value_or(Action::serve);
    if (ends_early(loaded.action)) return loaded;
    sources.env_args = ShellSplitter(env_cmd_args).words();
    auto env = parse_args(sources.env_args, kEnvironment);
    if (loaded.action == Action::serve) loaded.action = action_of(env).value_or(Action::serve);
    if (ends_early(loaded.action)) return loaded;
    auto path = config_path_of(cli);
    if (!path) path = config_path_of(env);  // the command line's -c wins
    sources.config_path = path.value_or("");
    loaded.config = build(std::move(sources), env, cli);
    return loaded;
}

std::optional<CommandLine> split_command(const std::vector<std::string>& argv_rest) {
    CommandLine out;
    std::size_t i = 0;
    for (; i < argv_rest.size(); ++i) {
        const std::string& arg = argv_rest[i];
        if (arg.size() < 2 || arg[0] != '-' || arg == "--") break;
        out.server_args.push_back(arg);
        FlagWord w = split_flag(arg);
        auto flag = find_flag(w.name);
        if (flag && flag->takes_value() && !w.attached && i + 1 < argv_rest.size()) out.server_args.push_back(argv_rest[++i]);
    }
    if (i == argv_rest.size() || argv_rest[i] == "--") return std::nullopt;
    bool options_end = false;   // after the command's own "--", everything is its argument
    for (; i < argv_rest.size(); ++i) {
        const std::string& arg = argv_rest[i];
        if (arg == "--") options_end = true;
        bool config_flag = !options_end && (arg == "-c" || arg == "--config");
        if (config_flag && i + 1 < argv_rest.size()) {
            out.server_args.insert(out.server_args.end(), {arg, argv_rest[++i]});
        } else if (!options_end && arg.rfind("--config=", 0) == 0) {
            out.server_args.push_back(arg);
        } else {
            out.command.push_back(arg);
        }
    }
    return out;
}

void read_config_from(const std::string& path, const std::string& snapshot) { config_snapshot() = {path, snapshot}; }

Config reload_config(const Config& previous) {
    Config sources;
    sources.config_path = previous.config_path;
    sources.env_args = previous.env_args;
    sources.cli_args = previous.cli_args;
    auto env = parse_args(sources.env_args, kEnvironment);
    auto cli = parse_args(sources.cli_args, kCommandLine);
    return build(std::move(sources), env, cli);
}

std::string print_config(const Config& config) {
    std::ostringstream out;
    out << "# agente-hibrido: the effective configuration\n";
    if (!config.config_path.empty()) out << "# config file: " << config.config_path << "\n";
    for (const auto& s : settings()) out << s.name << " = " << toml_value(config, s) << "\n";
    if (config.app && !config.app->empty()) {
        toml::table app = *config.app;
        mask_secrets_in_table(app);
        // Unindented, so that the printout reads like the server.conf it can be pasted into.
        auto flags = toml::toml_formatter::default_flags & ~toml::format_flags::indentation;
        out << "\n" << toml::toml_formatter(app, flags) << "\n";
    }
    return out.str();
}

std::string usage_text() {
    const Config defaults;
    std::string out =
        "usage: agente-hibrido [OPTIONS]\n\n"
        "A prefork HTTP server. Settings come from their defaults, then the config file\n"
        "(-c), then AGENTE_HIBRIDO_CMD_ARGS, then these options; the later wins.\n\n"
        "options:\n";
    for (const auto& c : commands()) out += usage_entry(flag_list(c.flags, c.metavar), std::string(c.help));
    for (const auto& s : settings())
        out += usage_entry(flag_list(s.flags, s.metavar),
                           std::string(s.help) + " [" + toml_value(defaults, s) + "]");
    return out;
}

std::string nearest_setting(const std::string& name) { return nearest(name, known_names()); }

void register_app_section(AppSection section) {
    if (section.name.empty() || find_setting(section.name))
        throw std::invalid_argument("app section name " + quote(section.name) + " is not free");
    auto& sections = app_sections();
    auto same = std::find_if(sections.begin(), sections.end(),
                             [&](const AppSection& a) { return a.name == section.name; });
    if (same != sections.end()) *same = std::move(section);
    else sections.push_back(std::move(section));
}

}  // namespace agente
