// Reading the app's tables of server.conf: typed getters whose every error names the line of the
// offending value ("server.conf:12: providers.kimi.base_url: expected a string, got 3"), shared by
// the gateway's and the agent's settings. `prefix` is the dotted path of the table ("gateway.").
#pragma once

#include <chrono>
#include <set>
#include <string>
#include <vector>

namespace toml { inline namespace v3 { class node; class table; } }

namespace agente::app {

int line_of(const toml::node& n);
[[noreturn]] void fail(const std::string& file, const toml::node& at, const std::string& path, const std::string& what);
std::string show(const toml::node& n);

// Keys a table may hold; anything else is a typo worth an error rather than silence.
void check_keys(const toml::table& t, const std::string& file, const std::string& prefix,
                const std::set<std::string>& known);

std::string get_string(const toml::table& t, const std::string& file, const std::string& prefix, const char* key,
                       std::string fallback = {}, bool non_empty = false);
long get_int(const toml::table& t, const std::string& file, const std::string& prefix, const char* key, long fallback,
             long min, long max);
bool get_bool(const toml::table& t, const std::string& file, const std::string& prefix, const char* key, bool fallback);
// Seconds as an integer or a float (0.25 is fine: tests and fast local upstreams want short ones).
std::chrono::milliseconds get_seconds(const toml::table& t, const std::string& file, const std::string& prefix,
                                      const char* key, std::chrono::milliseconds fallback, double min_s = 0.001,
                                      double max_s = 7 * 86400.0);
std::vector<std::string> get_strings(const toml::table& t, const std::string& file, const std::string& prefix,
                                     const char* key, bool non_empty = false);

}  // namespace agente::app
