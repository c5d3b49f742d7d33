// The server's settings: gunicorn's names, read from server.conf (TOML), AGENTE_HIBRIDO_CMD_ARGS and
// the command line, in that order of precedence (defaults < file < environment < command line).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace toml { inline namespace v3 { class table; } }

namespace agente {

// A configuration error that names its place: "server.conf:7: workers: expected ..."; from the
// command line or the environment, file is "command line" / "AGENTE_HIBRIDO_CMD_ARGS" and line 0.
class ConfigError : public std::runtime_error {
public:
    ConfigError(std::string file, int line, const std::string& message);
    const std::string& file() const { return file_; }
    int line() const { return line_; }
private:
    std::string file_;
    int line_;
};

// Where a setting's value was set: ("server.conf", 7, "pidfile") or ("command line", 0, "--pid").
struct SettingOrigin {
    std::string file;
    int line = 0;
    std::string name;
};

struct Config {
    // Where the values came from; kept so that a reload re-reads the same file with the same overrides.
    std::string config_path;                 // -c; empty: embedded defaults only
    std::vector<std::string> env_args;       // AGENTE_HIBRIDO_CMD_ARGS, split like a shell would
    std::vector<std::string> cli_args;       // argv[1..]
    // By setting name, for errors found after reading (check_config_environment); defaults have none.
    std::map<std::string, SettingOrigin, std::less<>> origins;

    // Sockets: "HOST:PORT", "[::1]:PORT", "unix:/path", a TCP one optionally after "https://" or
    // "http://" (which of them serve TLS: src/core/bind_address.hpp). gunicorn's default.
    std::vector<std::string> bind{"127.0.0.1:8000"};
    bool bind_given = false;                 // set anywhere: systemd's sockets are matched to it
    int backlog = 2048;

    // TLS, gunicorn's settings. The master reads the files at start and on every reload.
    std::string certfile;                    // PEM certificate chain, leaf first (the key may follow)
    std::string keyfile;                     // PEM private key; empty: it is in certfile
    std::string ca_certs;                    // PEM CAs that client certificates are verified against
    int cert_reqs = 0;                       // client certificates: 0 not asked, 1 optional, 2 required
    std::string ciphers;                     // OpenSSL cipher list for TLS 1.2; empty: OpenSSL's default

    // Processes.
    int workers = 1;
    int worker_connections = 1000;
    int timeout = 30;                        // seconds without a heartbeat before a worker is killed
    int graceful_timeout = 30;               // seconds a stopping/recycled worker gets to finish
    int keepalive = 2;                       // idle seconds on a keep-alive connection
    int max_requests = 0;                    // 0: never recycle
    int max_requests_jitter = 0;
    int max_draining = 1;                    // recycled workers allowed to drain at once
    int boot_timeout = 30;                   // seconds a new worker gets to report ready

    // The dirty pool (gunicorn's dirty workers): processes for the app's blocking jobs.
    int dirty_workers = 0;                   // 0: no pool
    int dirty_threads = 1;                   // jobs a dirty worker runs at once, one thread each
    int dirty_timeout = 300;                 // seconds a job (or a silent dirty worker) may take; 0: unbounded
    int dirty_graceful_timeout = 30;         // seconds a stopping dirty worker gets to finish its jobs
    int dirty_backlog = 64;                  // calls waiting for a free dirty thread; more are refused

    // Development (gunicorn's --reload): the master reloads itself, as on SIGHUP, when the binary, the
    // config file or one of reload_extra_files changes on disk. Watched with inotify.
    bool reload = false;
    std::vector<std::string> reload_extra_files;
    std::string reload_engine = "auto";      // "auto" or "inotify" (gunicorn's "poll" is refused)

    // Request limits (gunicorn's), plus a body limit answered 413.
    int limit_request_line = 4094;           // 0: unlimited (as gunicorn)
    int limit_request_fields = 100;
    int limit_request_field_size = 8190;
    std::uint64_t limit_request_body = 16 * 1024 * 1024;
    int header_timeout = 10;                 // seconds to receive a request's headers (slow clients)

    // Logging.
    std::string accesslog;                   // empty: off (gunicorn's default); "-": stdout
    std::string errorlog = "-";              // "-": stderr
    std::string loglevel = "info";           // debug, info, warning, error, critical
    std::string access_log_format =
        R"(%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s")";
    std::uint64_t access_log_buffer = 64 * 1024;  // bytes gathered per worker before a write; 0: each line
    int access_log_flush = 1;                // seconds a buffered line waits at most

    // Process identity.
    std::string proc_name;                   // shown in ps titles; empty: "agente-hibrido"
    std::string pidfile;
    std::string user;                        // switch to after binding (master and workers)
    std::string group;
    int umask = 0;
    std::vector<std::string> forwarded_allow_ips{"127.0.0.1", "::1"};

    // GET /metrics. Without a token it is answered only when every listening socket is loopback (or
    // a unix socket); with one, only to "Authorization: Bearer <token>".
    std::string metrics_token;               // the token itself (inline, or read from the two below)
    std::string metrics_token_env;           // an environment variable that holds it
    std::string metrics_token_file;          // a file that holds it ($CREDENTIALS_DIRECTORY or beside server.conf)

    // Tables of server.conf that belong to the app (its section names are registered by the app);
    // the core carries them to the app untouched. Never null after load_config().
    std::shared_ptr<const toml::table> app;
    std::string app_source;                  // file the app tables came from, for app errors' file:line

    std::string display_name() const { return proc_name.empty() ? "agente-hibrido" : proc_name; }
};

// What the command line asked for besides settings.
enum class Action { serve, check_config, print_config, version, help };

struct LoadedConfig {
    Config config;
    Action action = Action::serve;
};

// Builds the effective configuration. `argv_rest` is argv[1..]; `env_cmd_args` the value of
// AGENTE_HIBRIDO_CMD_ARGS (empty when unset). Throws ConfigError naming file:line.
LoadedConfig load_config(const std::vector<std::string>& argv_rest, const std::string& env_cmd_args);

// An app command: `agente-hibrido [OPTIONS] WORD ARGS...` (e.g. `rag search ...`). The options before
// WORD, and -c/--config anywhere after it, are the server's, so the command reads the same
// server.conf as the server; the rest, WORD first, is the command's. nullopt when argv_rest has no
// WORD (a plain server start). Unknown options are left where they are for load_config to report.
struct CommandLine {
    std::vector<std::string> server_args;
    std::vector<std::string> command;
};
std::optional<CommandLine> split_command(const std::vector<std::string>& argv_rest);

// A worker reads the configuration file `path` from `snapshot` (the bytes its master validated, in a
// memfd), so that it names `path` in its messages and finds files relative to it.
void read_config_from(const std::string& path, const std::string& snapshot);

// Re-reads the same sources as `previous` (for SIGHUP). Throws ConfigError.
Config reload_config(const Config& previous);

// Checks what the settings name outside the process, when a configuration is loaded rather than
// when a value is first used: `user` and `group` exist; the pidfile (by the master), the access log
// and the error log (by the workers, as `user` when they switch to it) can be written, in a directory
// that exists (it is not created). Throws ConfigError naming where the value was set. For the
// master at start and on reload, and --check-config; workers trust their master's check.
void check_config_environment(const Config& config);

// The effective settings as TOML, API keys and other secrets masked (for --print-config).
std::string print_config(const Config& config);

// The text of --help.
std::string usage_text();

// The nearest known setting name to `name`, or "" when none is close (for "did you mean").
std::string nearest_setting(const std::string& name);

// App sections: a table name the app owns in server.conf (e.g. "gateway"), with a validator that
// throws ConfigError naming file:line for bad values. Registered before load_config() is called.
struct AppSection {
    std::string name;
    void (*validate)(const toml::table& section, const std::string& file) = nullptr;
};
void register_app_section(AppSection section);

}  // namespace agente
