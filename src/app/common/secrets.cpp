#include "app/common/secrets.hpp"

#include "app/settings_reader.hpp"

#include <toml++/toml.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace agente::app {

std::string secret_path(const std::string& name, const std::string& conf_file) {
    if (!name.empty() && name[0] == '/') return name;
    if (const char* dir = std::getenv("CREDENTIALS_DIRECTORY"); dir && *dir) return std::string(dir) + "/" + name;
    auto slash = conf_file.rfind('/');
    return slash == std::string::npos ? name : conf_file.substr(0, slash + 1) + name;
}

std::string trim_blanks(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
    std::size_t i = 0;
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    return s.substr(i);
}

std::string checked_secret(std::string secret, const std::string& file, const toml::node& where, const std::string& key) {
    for (unsigned char c : secret)
        if (c <= ' ' || c == 0x7f) fail(file, where, key, "the secret has a blank or a control character inside it");
    return secret;
}

std::string read_secret(const toml::table& t, const std::string& file, const std::string& prefix, const char* env_key,
                        const char* file_key) {
    std::string env = get_string(t, file, prefix, env_key), path = get_string(t, file, prefix, file_key);
    if (!env.empty()) {
        const char* v = std::getenv(env.c_str());
        if (!v || !*v) fail(file, *t.get(env_key), prefix + env_key, "environment variable " + env + " is not set");
        return checked_secret(trim_blanks(v), file, *t.get(env_key), prefix + env_key);
    }
    if (!path.empty()) {
        std::ifstream in(secret_path(path, file));
        if (!in) fail(file, *t.get(file_key), prefix + file_key, "cannot read " + secret_path(path, file));
        std::ostringstream s;
        s << in.rdbuf();
        return checked_secret(trim_blanks(s.str()), file, *t.get(file_key), prefix + file_key);
    }
    return {};
}

std::string read_secret_setting(const toml::table& t, const std::string& file, const std::string& prefix,
                                const std::string& key) {
    const std::string env_key = key + "_env", file_key = key + "_file";
    const toml::node* given = nullptr;
    for (const std::string& k : {key, env_key, file_key}) {
        const toml::node* n = t.get(k);
        if (!n) continue;
        if (given) fail(file, *n, prefix + k, "give one of " + key + ", " + env_key + " or " + file_key + ", not several");
        given = n;
    }
    std::string inline_value = get_string(t, file, prefix, key.c_str(), {}, true);
    if (!inline_value.empty()) return checked_secret(inline_value, file, *t.get(key), prefix + key);
    return read_secret(t, file, prefix, env_key.c_str(), file_key.c_str());
}

}  // namespace agente::app
