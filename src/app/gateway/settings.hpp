// The gateway's settings: [gateway], [providers.NAME] and [models."NAME"] of server.conf, read from
// the app tables the core keeps. Validation errors name server.conf's file:line.
#pragma once

#include "app/common/retrieval.hpp"
#include "app/gateway/key_limits.hpp"

#include <chrono>
#include <string>
#include <string_view>
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
    // Whether a connection to `o` may serve this endpoint: the same server, reached the same way, and
    // not one made under another provider's trust.
    bool same_pool(const Endpoint& o) const {
        return tls == o.tls && port == o.port && host == o.host && tls_ca_file == o.tls_ca_file;
    }
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
    // Every streamed chat request asks this upstream for its usage (stream_options.include_usage),
    // so that streams are charged to client keys and counted in /metrics. false for an upstream that
    // refuses stream_options: its streams are then charged only if it reports usage unasked.
    bool stream_include_usage = true;
};

struct Target {
    std::string provider;
    std::string model;                   // the upstream model name
    std::string model_json;              // the same as a JSON string, quoted once here, not per request
};

struct ModelSettings {
    std::string name;                    // the public name clients ask for
    std::vector<Target> targets;         // first healthy one serves, the rest are fallbacks
    // Answers grounded in vector stores, with citations (docs/rag.md); no vector_stores: a plain
    // proxied model.
    app::Retrieval retrieval;
};

// One client key: a key of the flat `api_keys` list (named "api_keys", no limits of its own), or
// one of [gateway.clients.NAME] with its name (the label of its usage in /metrics and the logs,
// never the key) and its limits.
struct ClientKey {
    std::string name;
    std::string key;
    KeyLimits limits;
};

// The name the flat list's keys share.
inline constexpr std::string_view flat_keys_name = "api_keys";

struct GatewaySettings {
    std::vector<ClientKey> clients;      // every client key, the flat list's first; empty: /v1 is open
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
    std::vector<std::string> client_keys() const;   // the keys of `clients`, in their order
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
inline constexpr int max_named_clients = 64;
inline constexpr std::size_t max_client_name = 47;

}  // namespace agente::gateway
