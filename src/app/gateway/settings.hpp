// The gateway's settings: [gateway], [providers.NAME] and [models."NAME"] of server.conf, read from
// the app tables the core keeps. Validation errors name server.conf's file:line.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace toml { inline namespace v3 { class table; } }

namespace agente::gateway {

using std::chrono::milliseconds;

// Where a provider lives: "https://api.moonshot.ai/v1" → tls, host, port "443", base_path "/v1".
struct Endpoint {
    bool tls = false;
    std::string host;
    std::string port;
    std::string base_path;   // without a trailing slash
    std::string tls_ca_file; // the CAs trusted for this provider (PEM); empty: the system store
    // Connections are pooled by key: one made under another provider's trust is not reused here.
    std::string key() const { return (tls ? "https://" : "http://") + host + ":" + port + " " + tls_ca_file; }
};

// Parses an http(s) URL; throws std::invalid_argument saying what is wrong.
Endpoint parse_base_url(const std::string& url);

struct ProviderSettings {
    std::string name;
    Endpoint endpoint;
    std::string api_key;                 // resolved from api_key_env / api_key_file; "" sends none
    milliseconds connect_timeout{10'000};
    milliseconds first_byte_timeout{120'000};
    milliseconds total_timeout{180'000};
};

struct Target {
    std::string provider;
    std::string model;                   // the upstream model name
    std::string model_json;              // the same as a JSON string, quoted once here, not per request
};

struct ModelSettings {
    std::string name;                    // the public name clients ask for
    std::vector<Target> targets;         // first healthy one serves, the rest are fallbacks
};

struct GatewaySettings {
    std::vector<std::string> api_keys;   // client keys; empty: /v1 is open
    std::string admin_token;             // empty: the admin endpoint answers 403
    int max_concurrent_streams = 10;
    milliseconds stream_timeout{300'000};
    milliseconds stream_keepalive{15'000};
    int circuit_breaker_threshold = 5;
    milliseconds circuit_breaker_cooldown{30'000};
    int retries = 1;                     // extra attempts per target, before the first byte only
    milliseconds retry_backoff{200};
    int upstream_keepalive_connections = 32;  // idle connections kept per upstream host and worker
    std::vector<ProviderSettings> providers;
    std::vector<ModelSettings> models;

    const ProviderSettings* provider(const std::string& name) const;
    const ModelSettings* model(const std::string& name) const;
};

// Section validators for register_app_section(): each throws ConfigError(file, line, ...).
void validate_gateway_section(const toml::table& section, const std::string& file);
void validate_providers_section(const toml::table& section, const std::string& file);
void validate_models_section(const toml::table& section, const std::string& file);

// The whole gateway from the app tables: cross-checks (a model's provider exists) and resolves
// secrets from the environment and files ($CREDENTIALS_DIRECTORY for relative names). Throws
// ConfigError; the master calls it on every (re)load so a missing key refuses the start.
GatewaySettings load_gateway_settings(const toml::table& app, const std::string& file);

// Upper bounds fixed by the shared-memory layout.
inline constexpr int max_providers = 64;
inline constexpr std::size_t max_provider_name = 47;

}  // namespace agente::gateway
