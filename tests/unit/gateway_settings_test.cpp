// The gateway's tables: values read, and every error naming server.conf's file:line.
#include "app/gateway/settings.hpp"

#include <agente/config.hpp>

#include <gtest/gtest.h>
#include <toml++/toml.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include <unistd.h>

namespace agente::gateway {
namespace {

toml::table parse(std::string_view text) { return toml::parse(text, std::string_view("server.conf")); }

// The message of the ConfigError that loading (or the section validators) throws.
std::string error_of(std::string_view text) {
    toml::table t = parse(text);
    try {
        if (auto* g = t.get_as<toml::table>("gateway")) validate_gateway_section(*g, "server.conf");
        if (auto* p = t.get_as<toml::table>("providers")) validate_providers_section(*p, "server.conf");
        if (auto* m = t.get_as<toml::table>("models")) validate_models_section(*m, "server.conf");
        load_gateway_settings(t, "server.conf");
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "";
}

constexpr std::string_view good = R"(
[gateway]
api_keys = ["k1", "k2"]
max_concurrent_streams = 4
stream_keepalive = 0.5
circuit_breaker_threshold = 2

[providers.kimi]
base_url = "https://api.moonshot.ai/v1"
connect_timeout = 2
first_byte_timeout = 30.5

[providers.gemini]
base_url = "https://generativelanguage.googleapis.com/v1beta/openai/"

[models."kimi-k2"]
targets = [{ provider = "kimi", model = "kimi-k2-0905-preview" }, { provider = "gemini", model = "gemini-2.5-flash" }]
)";

TEST(GatewaySettings, ReadsEveryTable) {
    auto s = load_gateway_settings(parse(good), "server.conf");
    EXPECT_EQ(s.clients.size(), 2u);
    EXPECT_EQ(s.max_concurrent_streams, 4);
    EXPECT_EQ(s.stream_keepalive.count(), 500);
    EXPECT_EQ(s.stream_timeout.count(), 300'000);   // the seed's STREAM_TIMEOUT_SECONDS
    ASSERT_NE(s.provider("kimi"), nullptr);
    EXPECT_EQ(s.provider("kimi")->first_byte_timeout.count(), 30'500);
    EXPECT_EQ(s.provider("gemini")->endpoint.base_path, "/v1beta/openai");
    ASSERT_NE(s.model("kimi-k2"), nullptr);
    EXPECT_EQ(s.model("kimi-k2")->targets[1].provider, "gemini");
    EXPECT_EQ(s.model("kimi-k2")->targets[1].model_json, R"("gemini-2.5-flash")");   // as with_model() takes it
}

TEST(GatewaySettings, ErrorsNameFileAndLine) {
    EXPECT_EQ(error_of("[gateway]\nmax_concurrent_streams = 0\n"),
              "server.conf:2: gateway.max_concurrent_streams: expected 1..1000000, got 0");
    EXPECT_EQ(error_of("[gateway]\n\nstream_keepalive = \"x\"\n"),
              "server.conf:3: gateway.stream_keepalive: expected seconds (a number), got 'x'");
    EXPECT_EQ(error_of("[gateway]\nmax_streams = 3\n"), "server.conf:2: gateway.max_streams: unknown setting");
    EXPECT_EQ(error_of("[providers.kimi]\nbase_url = \"api.moonshot.ai\"\n"),
              "server.conf:2: providers.kimi.base_url: expected an http:// or https:// URL, got \"api.moonshot.ai\"");
    EXPECT_EQ(error_of("[providers.kimi]\nbase_url = \"http://h\"\napi_key_env = \"AGENTE_TEST_SURELY_UNSET\"\n"),
              "server.conf:3: providers.kimi.api_key_env: environment variable AGENTE_TEST_SURELY_UNSET is not set");
    EXPECT_EQ(error_of("[providers.kimi]\nbase_url = \"http://h\"\n[models.m]\ntargets = [{ provider = \"kimi\", model = \"x\" },\n"
                       "  { provider = \"nope\", model = \"y\" }]\n"),
              "server.conf:5: models.m.targets: unknown provider \"nope\" (add a [providers.nope] table)");
    EXPECT_EQ(error_of("[models.m]\ntargets = []\n"),
              "server.conf:2: models.m.targets: expected a non-empty list of { provider, model } tables");
}

TEST(GatewaySettings, AModelMayAnswerFromVectorStores) {
    std::string text = std::string(good) + "\n[models.\"kb\"]\ntargets = [{ provider = \"kimi\", model = \"k\" }]\n"
                                           "vector_stores = [\"manuals\", \"vs_abc\"]\nmax_sources = 8\n";
    auto s = load_gateway_settings(parse(text), "server.conf");
    EXPECT_EQ(s.model("kb")->retrieval.vector_stores, (std::vector<std::string>{"manuals", "vs_abc"}));
    EXPECT_EQ(s.model("kb")->retrieval.max_sources, 8);
    EXPECT_TRUE(s.model("kimi-k2")->retrieval.vector_stores.empty());   // a plain proxied model
    EXPECT_EQ(s.model("kimi-k2")->retrieval.max_sources, 5);
    EXPECT_EQ(error_of("[models.m]\ntargets = [{ provider = \"p\", model = \"x\" }]\nvector_stores = [\"\"]\n"),
              "server.conf:3: models.m.vector_stores: expected non-empty strings, got ''");
    EXPECT_EQ(error_of("[models.m]\ntargets = [{ provider = \"p\", model = \"x\" }]\nmax_sources = 21\n"),
              "server.conf:3: models.m.max_sources: expected 1..20, got 21");
    EXPECT_EQ(s.model("kb")->retrieval.retrieval_turns, 4);
    EXPECT_EQ(error_of("[models.m]\ntargets = [{ provider = \"p\", model = \"x\" }]\nretrieval_turns = -1\n"),
              "server.conf:3: models.m.retrieval_turns: expected 0..50, got -1");
}

TEST(GatewaySettings, SecretsFromTheEnvironmentAndFiles) {
    ::setenv("AGENTE_TEST_PROVIDER_KEY", "  sk-from-env\n", 1);
    auto s = load_gateway_settings(
        parse("[providers.p]\nbase_url = \"http://h\"\napi_key_env = \"AGENTE_TEST_PROVIDER_KEY\"\n"), "server.conf");
    EXPECT_EQ(s.providers[0].api_key, "sk-from-env");
    ::setenv("AGENTE_TEST_PROVIDER_KEY", "sk-new\r\nsk-old", 1);   // it would end the Authorization line early
    EXPECT_EQ(error_of("[providers.p]\nbase_url = \"http://h\"\napi_key_env = \"AGENTE_TEST_PROVIDER_KEY\"\n"),
              "server.conf:3: providers.p.api_key_env: the secret has a blank or a control character inside it");
    ::unsetenv("AGENTE_TEST_PROVIDER_KEY");
    EXPECT_EQ(error_of("[providers.p]\nbase_url = \"http://h\"\napi_key_file = \"/nonexistent/key\"\n"),
              "server.conf:3: providers.p.api_key_file: cannot read /nonexistent/key");
}

// As configuration.md promises for every secret: a blank or control character inside refuses the
// start, inline values included (they were let through; no client can send such a key).
TEST(GatewaySettings, InlineKeysAndTokenWithBlanksAreRefused) {
    EXPECT_EQ(error_of("[gateway]\napi_keys = [\n  \"sk-good\",\n  \"sk bad\",\n]\n"),
              "server.conf:4: gateway.api_keys: the secret has a blank or a control character inside it");
    EXPECT_EQ(error_of("[gateway]\n\nadmin_token = \"adm\\ttab\"\n"),
              "server.conf:3: gateway.admin_token: the secret has a blank or a control character inside it");
    EXPECT_EQ(error_of("[gateway]\napi_keys = [\"\"]\n"), "server.conf:2: gateway.api_keys: expected non-empty strings, got ''");
    char dir[] = "/tmp/agente-keys-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    std::string keys = std::string(dir) + "/keys";
    std::ofstream(keys) << "# clients\nsk-one\n  sk-two  \nsk three\n";
    EXPECT_EQ(error_of("[gateway]\napi_keys_file = \"" + keys + "\"\n"),
              "server.conf:2: gateway.api_keys_file (line 4): the secret has a blank or a control character inside it");
    std::ofstream(keys) << "# clients\nsk-one\n  sk-two  \n";
    auto s = load_gateway_settings(parse("[gateway]\napi_keys = [\"k0\"]\napi_keys_file = \"" + keys + "\"\n"), "server.conf");
    EXPECT_EQ(s.client_keys(), (std::vector<std::string>{"k0", "sk-one", "sk-two"}));
    std::remove(keys.c_str());
    ::rmdir(dir);
}

// Named client keys beside the flat list: a name for /metrics, one secret, optional limits.
TEST(GatewaySettings, NamedClientKeysWithLimits) {
    ::setenv("AGENTE_TEST_CLIENT_KEY", "sk-bob", 1);
    auto s = load_gateway_settings(parse("[gateway]\napi_keys = [\"sk-flat\"]\n"
                                         "[gateway.clients.alice]\nkey = \"sk-alice\"\nrpm = 60\ntpm = 10000\nmax_streams = 2\n"
                                         "[gateway.clients.bob]\nkey_env = \"AGENTE_TEST_CLIENT_KEY\"\n"),
                                   "server.conf");
    ::unsetenv("AGENTE_TEST_CLIENT_KEY");
    ASSERT_EQ(s.clients.size(), 3u);
    EXPECT_EQ(s.clients[0].name, "api_keys");   // the flat list's keys share this name, and have no limits
    EXPECT_FALSE(s.clients[0].limits.any());
    EXPECT_EQ(s.clients[1].name, "alice");
    EXPECT_EQ(s.clients[1].key, "sk-alice");
    EXPECT_EQ(s.clients[1].limits.requests_per_minute, 60);
    EXPECT_EQ(s.clients[1].limits.tokens_per_minute, 10000);
    EXPECT_EQ(s.clients[1].limits.max_streams, 2);
    EXPECT_EQ(s.clients[2].key, "sk-bob");
    EXPECT_FALSE(s.clients[2].limits.any());
    EXPECT_EQ(s.client_keys(), (std::vector<std::string>{"sk-flat", "sk-alice", "sk-bob"}));
}

TEST(GatewaySettings, NamedClientKeyErrorsNameFileAndLine) {
    EXPECT_EQ(error_of("[gateway.clients.alice]\nrpm = 3\n"),
              "server.conf:1: gateway.clients.alice.key: missing: give key, key_env or key_file");
    EXPECT_EQ(error_of("[gateway.clients.alice]\nkey = \"k\"\nrpm = 0\n"),
              "server.conf:3: gateway.clients.alice.rpm: expected 1..1000000000, got 0");
    EXPECT_EQ(error_of("[gateway.clients.alice]\nkey = \"k\"\nrps = 3\n"),
              "server.conf:3: gateway.clients.alice.rps: unknown setting");
    EXPECT_EQ(error_of("[gateway.clients.alice]\nkey = \"k\"\nkey_env = \"X\"\n"),
              "server.conf:3: gateway.clients.alice.key_env: give one of key, key_env or key_file, not several");
    EXPECT_EQ(error_of("[gateway.clients.api_keys]\nkey = \"k\"\n"),
              "server.conf:1: gateway.clients.api_keys: expected a name of 1..47 letters, digits, '_', '-' or '.' "
              "(not \"api_keys\", the flat list's name)");
    EXPECT_EQ(error_of("[gateway]\napi_keys = [\"k\"]\n[gateway.clients.alice]\nkey = \"k\"\n"),
              "server.conf:3: gateway.clients.alice: the same key as one in api_keys");
    EXPECT_EQ(error_of("[gateway.clients.a]\nkey = \"k\"\n[gateway.clients.b]\nkey = \"k\"\n"),
              "server.conf:3: gateway.clients.b: the same key as gateway.clients.a");
    EXPECT_EQ(error_of("[gateway.clients.alice]\nkey = \"k k\"\n"),
              "server.conf:2: gateway.clients.alice.key: the secret has a blank or a control character inside it");
    EXPECT_EQ(error_of("[gateway]\nclients = 3\n"), "server.conf:2: gateway.clients: expected a table, got 3");
}

TEST(GatewaySettings, PrivateCaBundlePerProvider) {
    char dir[] = "/tmp/agente-ca-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    std::string pem = std::string(dir) + "/ca.pem", empty = std::string(dir) + "/empty.pem";
    std::ofstream(pem) << "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    std::ofstream(empty) << "not a certificate\n";
    auto s = load_gateway_settings(
        parse("[providers.vllm]\nbase_url = \"https://vllm.internal/v1\"\ntls_ca_file = \"" + pem + "\"\n"
              "[providers.kimi]\nbase_url = \"https://api.moonshot.ai/v1\"\n"),
        "server.conf");
    EXPECT_EQ(s.provider("vllm")->endpoint.tls_ca_file, pem);
    EXPECT_EQ(s.provider("kimi")->endpoint.tls_ca_file, "");   // the system store
    Endpoint system_trust = s.provider("vllm")->endpoint;
    system_trust.tls_ca_file.clear();
    EXPECT_FALSE(s.provider("vllm")->endpoint.same_pool(system_trust));   // pooled apart
    EXPECT_TRUE(s.provider("vllm")->endpoint.same_pool(s.provider("vllm")->endpoint));
    EXPECT_EQ(error_of("[providers.p]\nbase_url = \"https://h\"\n\ntls_ca_file = \"/nonexistent/ca.pem\"\n"),
              "server.conf:4: providers.p.tls_ca_file: cannot read /nonexistent/ca.pem");
    EXPECT_EQ(error_of("[providers.p]\nbase_url = \"https://h\"\ntls_ca_file = \"" + empty + "\"\n"),
              "server.conf:3: providers.p.tls_ca_file: " + empty + " holds no PEM certificate");
    EXPECT_EQ(error_of("[providers.p]\nbase_url = \"http://h\"\ntls_ca_file = \"" + pem + "\"\n"),
              "server.conf:3: providers.p.tls_ca_file: needs an https:// base_url");
    std::remove(pem.c_str());
    std::remove(empty.c_str());
    ::rmdir(dir);
}

}  // namespace
}  // namespace agente::gateway
