// Reading and checking the gateway's tables. Every error names the line of the offending value.
#include "app/gateway/settings.hpp"

#include "app/common/retrieval.hpp"
#include "app/common/secrets.hpp"
#include "app/settings_reader.hpp"

#include <agente/config.hpp>

#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

namespace agente::gateway {

namespace {

using namespace agente::app;

std::vector<std::string> read_key_lines(const toml::table& t, const std::string& file, const std::string& prefix,
                                        const char* file_key) {
    std::vector<std::string> keys;
    std::string path = get_string(t, file, prefix, file_key);
    if (path.empty()) return keys;
    std::ifstream in(secret_path(path, file));
    if (!in) fail(file, *t.get(file_key), prefix + file_key, "cannot read " + secret_path(path, file));
    int n = 0;
    for (std::string line; std::getline(in, line);) {
        ++n;
        std::string k = trim_blanks(line);
        if (k.empty() || k[0] == '#') continue;
        keys.push_back(checked_secret(k, file, *t.get(file_key), prefix + file_key + " (line " + std::to_string(n) + ")"));
    }
    return keys;
}

// Inline secrets obey the rule of those from the environment and files (a key with a blank inside
// is two words in the Authorization header a client sends, and never matches).
std::vector<std::string> read_inline_keys(const toml::table& t, const std::string& file, const std::string& prefix) {
    std::vector<std::string> keys = get_strings(t, file, prefix, "api_keys", true);
    const toml::array* list = t.get_as<toml::array>("api_keys");
    for (std::size_t i = 0; i < keys.size(); ++i) checked_secret(keys[i], file, *list->get(i), prefix + "api_keys");
    return keys;
}

std::string read_inline_admin_token(const toml::table& t, const std::string& file, const std::string& prefix) {
    std::string token = get_string(t, file, prefix, "admin_token");
    if (!token.empty()) checked_secret(token, file, *t.get("admin_token"), prefix + "admin_token");
    return token;
}

// A provider's private CA bundle: found where secrets are (it may be a systemd credential), and
// checked now, so that a wrong path stops a start or a reload rather than failing every call later.
std::string read_ca_file(const std::string& name, const std::string& conf_file, const toml::node& at,
                         const std::string& key) {
    if (name.empty()) fail(conf_file, at, key, "expected the path of a PEM file of CA certificates");
    std::string path = secret_path(name, conf_file);
    std::ifstream in(path);
    if (!in) fail(conf_file, at, key, "cannot read " + path);
    std::ostringstream s;
    s << in.rdbuf();
    if (s.str().find("-----BEGIN CERTIFICATE-----") == std::string::npos)
        fail(conf_file, at, key, path + " holds no PEM certificate");
    return path;
}

bool client_name_ok(std::string_view name) {
    if (name.empty() || name.size() > max_client_name || name == flat_keys_name) return false;
    for (char c : name)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') return false;
    return true;
}

const toml::table& sub_table(const toml::node& n, const std::string& file, const std::string& path) {
    if (!n.is_table()) fail(file, n, path, "expected a table, got " + show(n));
    return *n.as_table();
}

ProviderSettings read_provider(const std::string& name, const toml::table& t, const std::string& file) {
    std::string p = "providers." + name + ".";
    if (name.empty() || name.size() > max_provider_name)
        fail(file, t, "providers." + name, "expected a name of 1.." + std::to_string(max_provider_name) + " characters");
    check_keys(t, file, p, {"base_url", "api_key_env", "api_key_file", "connect_timeout", "first_byte_timeout",
                            "total_timeout", "tls_ca_file", "stream_include_usage"});
    ProviderSettings s;
    s.name = name;
    const toml::node* url = t.get("base_url");
    if (!url) fail(file, t, p + "base_url", "missing (e.g. \"https://api.moonshot.ai/v1\")");
    try {
        s.endpoint = parse_base_url(get_string(t, file, p, "base_url"));
    } catch (const std::invalid_argument& e) {
        fail(file, *url, p + "base_url", e.what());
    }
    if (const toml::node* ca = t.get("tls_ca_file")) {
        if (!s.endpoint.tls) fail(file, *ca, p + "tls_ca_file", "needs an https:// base_url");
        s.endpoint.tls_ca_file = read_ca_file(get_string(t, file, p, "tls_ca_file"), file, *ca, p + "tls_ca_file");
    }
    if (t.get("api_key_env") && t.get("api_key_file"))
        fail(file, *t.get("api_key_file"), p + "api_key_file", "give api_key_env or api_key_file, not both");
    s.connect_timeout = get_seconds(t, file, p, "connect_timeout", s.connect_timeout);
    s.first_byte_timeout = get_seconds(t, file, p, "first_byte_timeout", s.first_byte_timeout);
    s.total_timeout = get_seconds(t, file, p, "total_timeout", s.total_timeout);
    s.stream_include_usage = get_bool(t, file, p, "stream_include_usage", s.stream_include_usage);
    return s;
}

// [gateway.clients.NAME]: one of key, key_env or key_file, and limits. The secret is read only
// when `resolve` (the master's load and the workers'); the section validator checks the shape.
ClientKey read_client(const std::string& name, const toml::table& t, const std::string& file, bool resolve) {
    std::string p = "gateway.clients." + name + ".";
    if (!client_name_ok(name))
        fail(file, t, "gateway.clients." + name,
             "expected a name of 1.." + std::to_string(max_client_name) +
                 " letters, digits, '_', '-' or '.' (not \"api_keys\", the flat list's name)");
    check_keys(t, file, p, {"key", "key_env", "key_file", "rpm", "tpm", "max_streams"});
    if (!t.get("key") && !t.get("key_env") && !t.get("key_file"))
        fail(file, t, p + "key", "missing: give key, key_env or key_file");
    ClientKey c;
    c.name = name;
    c.limits.requests_per_minute = get_int(t, file, p, "rpm", 0, 1, 1'000'000'000);
    c.limits.tokens_per_minute = get_int(t, file, p, "tpm", 0, 1, 1'000'000'000'000);
    c.limits.max_streams = int(get_int(t, file, p, "max_streams", 0, 1, 1'000'000));
    if (resolve) {
        c.key = read_secret_setting(t, file, p, "key");
        if (c.key.empty()) fail(file, t, p + "key", "empty key");
    } else if (t.get("key")) {
        checked_secret(get_string(t, file, p, "key", {}, true), file, *t.get("key"), p + "key");
    }
    return c;
}

const toml::table* clients_table(const toml::table& gateway, const std::string& file) {
    const toml::node* n = gateway.get("clients");
    if (!n) return nullptr;
    const toml::table& t = sub_table(*n, file, "gateway.clients");
    if (t.size() > std::size_t(max_named_clients))
        fail(file, t, "gateway.clients", "at most " + std::to_string(max_named_clients) + " named client keys");
    return &t;
}

// The named clients after the flat list's keys; a key given twice would leave its usage to chance.
void read_clients(const toml::table& gateway, const std::string& file, std::vector<ClientKey>& clients) {
    const toml::table* table = clients_table(gateway, file);
    if (!table) return;
    for (auto&& [name, node] : *table) {
        std::string n(name.str());
        const toml::table& t = sub_table(node, file, "gateway.clients." + n);
        ClientKey c = read_client(n, t, file, true);
        for (const auto& other : clients)
            if (other.key == c.key)
                fail(file, t, "gateway.clients." + n, "the same key as " + (other.name == flat_keys_name
                                                                                 ? std::string("one in api_keys")
                                                                                 : "gateway.clients." + other.name));
        clients.push_back(std::move(c));
    }
}

ModelSettings read_model(const std::string& name, const toml::table& t, const std::string& file) {
    std::string p = "models." + name + ".";
    std::set<std::string> keys = retrieval_keys();
    keys.insert("targets");
    check_keys(t, file, p, keys);
    ModelSettings m;
    m.name = name;
    m.retrieval = read_retrieval(t, file, p);
    const toml::node* n = t.get("targets");
    if (!n) fail(file, t, p + "targets", "missing (e.g. [{ provider = \"kimi\", model = \"kimi-k2-0905-preview\" }])");
    const toml::array* a = n->as_array();
    if (!a || a->empty()) fail(file, *n, p + "targets", "expected a non-empty list of { provider, model } tables");
    for (auto&& e : *a) {
        const toml::table* target = e.as_table();
        if (!target) fail(file, e, p + "targets", "expected { provider = \"...\", model = \"...\" }, got " + show(e));
        check_keys(*target, file, p + "targets.", {"provider", "model"});
        Target tg;
        tg.provider = get_string(*target, file, p + "targets.", "provider");
        tg.model = get_string(*target, file, p + "targets.", "model");
        if (tg.provider.empty() || tg.model.empty())
            fail(file, e, p + "targets", "each target needs a provider and a model");
        tg.model_json = nlohmann::json(tg.model).dump();
        m.targets.push_back(std::move(tg));
    }
    return m;
}

}  // namespace

Endpoint parse_base_url(const std::string& url) {
    Endpoint e;
    std::string rest;
    if (url.rfind("https://", 0) == 0) e.tls = true, rest = url.substr(8);
    else if (url.rfind("http://", 0) == 0) rest = url.substr(7);
    else throw std::invalid_argument("expected an http:// or https:// URL, got \"" + url + "\"");
    auto slash = rest.find('/');
    std::string authority = rest.substr(0, slash);
    e.base_path = slash == std::string::npos ? "" : rest.substr(slash);
    while (!e.base_path.empty() && e.base_path.back() == '/') e.base_path.pop_back();
    if (authority.find('@') != std::string::npos) throw std::invalid_argument("credentials in the URL are not supported");
    std::size_t colon = authority.rfind(':');
    if (!authority.empty() && authority[0] == '[') {  // [v6]:port
        auto close = authority.find(']');
        if (close == std::string::npos) throw std::invalid_argument("unclosed [ in \"" + url + "\"");
        e.host = authority.substr(1, close - 1);
        colon = authority.size() > close + 1 && authority[close + 1] == ':' ? close + 1 : std::string::npos;
    } else {
        e.host = authority.substr(0, colon);
    }
    e.port = colon == std::string::npos ? (e.tls ? "443" : "80") : authority.substr(colon + 1);
    if (e.host.empty()) throw std::invalid_argument("no host in \"" + url + "\"");
    if (e.port.empty() || e.port.find_first_not_of("0123456789") != std::string::npos || std::stol(e.port) > 65535)
        throw std::invalid_argument("bad port in \"" + url + "\"");
    return e;
}

const ProviderSettings* GatewaySettings::provider(const std::string& name) const {
    for (auto& p : providers)
        if (p.name == name) return &p;
    return nullptr;
}

const ModelSettings* GatewaySettings::model(const std::string& name) const {
    for (auto& m : models)
        if (m.name == name) return &m;
    return nullptr;
}

std::vector<std::string> GatewaySettings::client_keys() const {
    std::vector<std::string> keys;
    for (const auto& c : clients) keys.push_back(c.key);
    return keys;
}

void validate_gateway_section(const toml::table& t, const std::string& file) {
    const std::string p = "gateway.";
    check_keys(t, file, p, {"api_keys", "api_keys_file", "admin_token", "admin_token_env", "admin_token_file",
                            "max_concurrent_streams", "stream_timeout_seconds", "stream_keepalive",
                            "circuit_breaker_threshold", "circuit_breaker_cooldown", "retries", "retry_backoff_ms",
                            "upstream_keepalive_connections", "clients"});
    read_inline_keys(t, file, p);
    if (const toml::table* clients = clients_table(t, file))
        for (auto&& [name, node] : *clients) {
            std::string n(name.str());
            read_client(n, sub_table(node, file, "gateway.clients." + n), file, false);
        }
    get_string(t, file, p, "api_keys_file");
    read_inline_admin_token(t, file, p);
    get_string(t, file, p, "admin_token_env");
    get_string(t, file, p, "admin_token_file");
    get_int(t, file, p, "max_concurrent_streams", 10, 1, 1'000'000);
    get_seconds(t, file, p, "stream_timeout_seconds", {});
    get_seconds(t, file, p, "stream_keepalive", {});
    get_int(t, file, p, "circuit_breaker_threshold", 5, 1, 1'000'000);
    get_seconds(t, file, p, "circuit_breaker_cooldown", {});
    get_int(t, file, p, "retries", 1, 0, 10);
    get_int(t, file, p, "retry_backoff_ms", 200, 0, 60'000);
    get_int(t, file, p, "upstream_keepalive_connections", 32, 0, 100'000);
}

void validate_providers_section(const toml::table& t, const std::string& file) {
    if (t.size() > std::size_t(max_providers))
        fail(file, t, "providers", "at most " + std::to_string(max_providers) + " providers");
    for (auto&& [name, node] : t) read_provider(std::string(name.str()), sub_table(node, file, "providers." + std::string(name.str())), file);
}

void validate_models_section(const toml::table& t, const std::string& file) {
    for (auto&& [name, node] : t) read_model(std::string(name.str()), sub_table(node, file, "models." + std::string(name.str())), file);
}

GatewaySettings load_gateway_settings(const toml::table& app, const std::string& file) {
    GatewaySettings s;
    static const toml::table empty;
    const toml::table* g = app.get_as<toml::table>("gateway");
    const toml::table& gt = g ? *g : empty;
    const std::string p = "gateway.";
    std::vector<std::string> flat = read_inline_keys(gt, file, p);
    for (auto& k : read_key_lines(gt, file, p, "api_keys_file")) flat.push_back(k);
    for (auto& k : flat) s.clients.push_back({std::string(flat_keys_name), std::move(k), {}});
    read_clients(gt, file, s.clients);
    s.admin_token = read_inline_admin_token(gt, file, p);
    if (s.admin_token.empty()) s.admin_token = read_secret(gt, file, p, "admin_token_env", "admin_token_file");
    s.max_concurrent_streams = int(get_int(gt, file, p, "max_concurrent_streams", s.max_concurrent_streams, 1, 1'000'000));
    s.stream_timeout = get_seconds(gt, file, p, "stream_timeout_seconds", s.stream_timeout);
    s.stream_keepalive = get_seconds(gt, file, p, "stream_keepalive", s.stream_keepalive);
    s.circuit_breaker_threshold = int(get_int(gt, file, p, "circuit_breaker_threshold", s.circuit_breaker_threshold, 1, 1'000'000));
    s.circuit_breaker_cooldown = get_seconds(gt, file, p, "circuit_breaker_cooldown", s.circuit_breaker_cooldown);
    s.retries = int(get_int(gt, file, p, "retries", s.retries, 0, 10));
    s.retry_backoff = milliseconds(get_int(gt, file, p, "retry_backoff_ms", s.retry_backoff.count(), 0, 60'000));
    s.upstream_keepalive_connections =
        int(get_int(gt, file, p, "upstream_keepalive_connections", s.upstream_keepalive_connections, 0, 100'000));

    if (const toml::table* providers = app.get_as<toml::table>("providers"))
        for (auto&& [name, node] : *providers) {
            std::string n(name.str());
            const toml::table& t = sub_table(node, file, "providers." + n);
            ProviderSettings ps = read_provider(n, t, file);
            ps.api_key = read_secret(t, file, "providers." + n + ".", "api_key_env", "api_key_file");
            s.providers.push_back(std::move(ps));
        }
    if (const toml::table* models = app.get_as<toml::table>("models"))
        for (auto&& [name, node] : *models) {
            std::string n(name.str());
            const toml::table& t = sub_table(node, file, "models." + n);
            ModelSettings m = read_model(n, t, file);
            const toml::array& targets = *t.get_as<toml::array>("targets");
            for (std::size_t i = 0; i < m.targets.size(); ++i)
                if (!s.provider(m.targets[i].provider))
                    fail(file, *targets.get(i), "models." + n + ".targets",
                         "unknown provider \"" + m.targets[i].provider + "\" (add a [providers." + m.targets[i].provider + "] table)");
            s.models.push_back(std::move(m));
        }
    return s;
}

}  // namespace agente::gateway
