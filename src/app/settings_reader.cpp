#include "app/settings_reader.hpp"

#include <agente/config.hpp>

#include <toml++/toml.h>

#include <sstream>

namespace agente::app {

int line_of(const toml::node& n) { return int(n.source().begin.line); }

void fail(const std::string& file, const toml::node& at, const std::string& path, const std::string& what) {
    throw ConfigError(file, line_of(at), path + ": " + what);
}

std::string show(const toml::node& n) {
    std::ostringstream s;
    n.visit([&](auto&& v) { s << v; });
    return s.str();
}

void check_keys(const toml::table& t, const std::string& file, const std::string& prefix,
                const std::set<std::string>& known) {
    for (auto&& [k, v] : t)
        if (!known.count(std::string(k.str()))) fail(file, v, prefix + std::string(k.str()), "unknown setting");
}

std::string get_string(const toml::table& t, const std::string& file, const std::string& prefix, const char* key,
                       std::string fallback, bool non_empty) {
    const toml::node* n = t.get(key);
    if (!n) return fallback;
    if (!n->is_string()) fail(file, *n, prefix + key, "expected a string, got " + show(*n));
    if (non_empty && n->as_string()->get().empty()) fail(file, *n, prefix + key, "expected a non-empty string");
    return n->as_string()->get();
}

long get_int(const toml::table& t, const std::string& file, const std::string& prefix, const char* key, long fallback,
             long min, long max) {
    const toml::node* n = t.get(key);
    if (!n) return fallback;
    if (!n->is_integer()) fail(file, *n, prefix + key, "expected an integer, got " + show(*n));
    long v = long(n->as_integer()->get());
    if (v < min || v > max)
        fail(file, *n, prefix + key, "expected " + std::to_string(min) + ".." + std::to_string(max) + ", got " + show(*n));
    return v;
}

bool get_bool(const toml::table& t, const std::string& file, const std::string& prefix, const char* key, bool fallback) {
    const toml::node* n = t.get(key);
    if (!n) return fallback;
    if (!n->is_boolean()) fail(file, *n, prefix + key, "expected true or false, got " + show(*n));
    return n->as_boolean()->get();
}

std::chrono::milliseconds get_seconds(const toml::table& t, const std::string& file, const std::string& prefix,
                                      const char* key, std::chrono::milliseconds fallback, double min_s, double max_s) {
    const toml::node* n = t.get(key);
    if (!n) return fallback;
    double s;
    if (n->is_integer()) s = double(n->as_integer()->get());
    else if (n->is_floating_point()) s = n->as_floating_point()->get();
    else fail(file, *n, prefix + key, "expected seconds (a number), got " + show(*n));
    if (!(s >= min_s) || s > max_s) {
        std::ostringstream range;
        range << "expected seconds between " << min_s << " and " << max_s << ", got " << show(*n);
        fail(file, *n, prefix + key, range.str());
    }
    return std::chrono::milliseconds(long(s * 1000 + 0.5));
}

std::vector<std::string> get_strings(const toml::table& t, const std::string& file, const std::string& prefix,
                                     const char* key, bool non_empty) {
    std::vector<std::string> out;
    const toml::node* n = t.get(key);
    if (!n) return out;
    const toml::array* a = n->as_array();
    if (!a) fail(file, *n, prefix + key, "expected a list of strings, got " + show(*n));
    for (auto&& e : *a) {
        if (!e.is_string() || (non_empty && e.as_string()->get().empty()))
            fail(file, e, prefix + key, std::string(non_empty ? "expected non-empty strings" : "expected strings") +
                                            ", got " + show(e));
        out.push_back(e.as_string()->get());
    }
    return out;
}

}  // namespace agente::app
