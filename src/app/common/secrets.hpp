// Secrets in server.conf (provider keys, admin tokens, the cluster's database URLs): given inline,
// through an environment variable (`*_env`) or in a file (`*_file`, systemd's LoadCredential=). Errors
// name the line and the key, never the secret.
#pragma once

#include <string>

namespace toml { inline namespace v3 { class node; class table; } }

namespace agente::app {

// A file's path: absolute as given, relative under $CREDENTIALS_DIRECTORY when set, else next to
// server.conf.
std::string secret_path(const std::string& name, const std::string& conf_file);

// Without the blanks and line ends around it (a file written by `echo` ends in a newline).
std::string trim_blanks(std::string s);

// A secret goes into a header line or a URL as it is: a blank or a control character inside it (two
// lines in a key file) would split or bend that line. Throws ConfigError at `where`.
std::string checked_secret(std::string secret, const std::string& file, const toml::node& where, const std::string& key);

// The value of `env_key` (an environment variable's name) or `file_key`; "" when neither is set.
// An unset variable or an unreadable file is an error at its line.
std::string read_secret(const toml::table& t, const std::string& file, const std::string& prefix, const char* env_key,
                        const char* file_key);

// `key` itself, `key_env` or `key_file`: at most one of the three (two would leave the reader
// guessing which wins); "" when none is set.
std::string read_secret_setting(const toml::table& t, const std::string& file, const std::string& prefix,
                                const std::string& key);

}  // namespace agente::app
