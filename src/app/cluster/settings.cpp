// Reading and checking [cluster]. The URLs are secrets (a password may be in them): inline, from the
// environment or from a file, as the providers' keys; errors name the key and line, never the value.
#include "app/cluster/settings.hpp"

#include "app/common/postgres.hpp"
#include "app/common/secrets.hpp"
#include "app/settings_reader.hpp"

#include <agente/config.hpp>

#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>
#include <spdlog/spdlog.h>
#include <toml++/toml.h>

#include <set>

namespace agente::cluster {

namespace {

using namespace agente::app;

const std::string prefix = "cluster.";

const std::set<std::string> cluster_keys{"postgres_url", "postgres_url_env", "postgres_url_file", "redis_url",
                                         "redis_url_env", "redis_url_file", "postgres_connect_timeout",
                                         "postgres_statement_timeout", "redis_timeout",
                                         "max_concurrent_streams", "stream_lease"};

// The key that gave the URL (postgres_url, _env or _file), for errors about its value.
const toml::node& given(const toml::table& t, const std::string& key) {
    for (const std::string& k : {key, key + "_env", key + "_file"})
        if (const toml::node* n = t.get(k)) return *n;
    return t;
}

bool starts_with(const std::string& s, std::string_view p) { return s.compare(0, p.size(), p) == 0; }

// libpq reads both forms, but only the URL has no blanks inside (its keyword form would put a
// password between spaces, which a secret may not hold); libpq itself checks the rest (master only,
// which loads it: see check_postgres_url()).
void check_postgres_scheme(const toml::table& t, const std::string& file, const std::string& url) {
    if (!starts_with(url, "postgresql://") && !starts_with(url, "postgres://"))
        fail(file, given(t, "postgres_url"), prefix + "postgres_url",
             "expected a postgresql:// URL (postgresql://user:password@host:5432/dbname)");
}

void check_redis_url(const toml::table& t, const std::string& file, const std::string& url) {
    auto parsed = boost::urls::parse_uri(url);
    std::string scheme = parsed ? std::string(parsed->scheme()) : std::string();
    if (scheme == "rediss")   // Debian 12's hiredis (0.14) has no TLS
        fail(file, given(t, "redis_url"), prefix + "redis_url",
             "rediss:// (TLS) is not supported by Debian 12's hiredis: use redis:// on a private network, "
             "or a unix:// socket");
    if (scheme != "redis" && scheme != "unix")
        fail(file, given(t, "redis_url"), prefix + "redis_url",
             "expected a redis:// or unix:// URL (redis://host:6379/0)");
}

ClusterSettings read_cluster(const toml::table& t, const std::string& file, bool read_secrets) {
    check_keys(t, file, prefix, cluster_keys);
    ClusterSettings s;
    // Without read_secrets (the section's validator, run in every process that loads the file), the
    // inline values are checked and the _env/_file ones only as strings: load_cluster_settings reads them.
    std::string postgres = read_secrets ? read_secret_setting(t, file, prefix, "postgres_url")
                                        : get_string(t, file, prefix, "postgres_url", {}, true);
    std::string redis = read_secrets ? read_secret_setting(t, file, prefix, "redis_url")
                                     : get_string(t, file, prefix, "redis_url", {}, true);
    if (!read_secrets)
        for (const char* k : {"postgres_url_env", "postgres_url_file", "redis_url_env", "redis_url_file"})
            get_string(t, file, prefix, k, {}, true);
    if (!postgres.empty()) check_postgres_scheme(t, file, postgres);
    if (!redis.empty()) check_redis_url(t, file, redis);
    s.postgres_url = std::move(postgres);
    s.redis_url = std::move(redis);
    s.postgres_connect_timeout = std::chrono::seconds(
        get_int(t, file, prefix, "postgres_connect_timeout", long(s.postgres_connect_timeout.count()), 2, 600));
    s.postgres_statement_timeout =
        get_seconds(t, file, prefix, "postgres_statement_timeout", s.postgres_statement_timeout, 0.01, 3600);
    s.redis_timeout = get_seconds(t, file, prefix, "redis_timeout", s.redis_timeout, 0.01, 60);
    s.max_concurrent_streams =
        int(get_int(t, file, prefix, "max_concurrent_streams", s.max_concurrent_streams, 0, 1000000));
    s.stream_lease = get_seconds(t, file, prefix, "stream_lease", s.stream_lease, 1, 3600);
    return s;
}

}  // namespace

void validate_cluster_section(const toml::table& section, const std::string& file) {
    // At most one of each URL's three keys, whatever else is wrong.
    for (const char* key : {"postgres_url", "redis_url"}) {
        int n = 0;
        for (const std::string& k : {std::string(key), std::string(key) + "_env", std::string(key) + "_file"})
            if (const toml::node* v = section.get(k); v && ++n > 1)
                fail(file, *v, prefix + k,
                     std::string("give one of ") + key + ", " + key + "_env or " + key + "_file, not several");
    }
    read_cluster(section, file, false);
}

namespace {

// `check_postgres`: libpq's own check of the URL, which loads libpq into the process.
ClusterSettings load(const toml::table& app, const std::string& file, bool check_postgres) {
    const toml::table* t = app.get_as<toml::table>("cluster");
    if (!t) return {};
    ClusterSettings s = read_cluster(*t, file, true);
    if (check_postgres && s.uses_postgres()) {
        std::string why = pg::check_url(s.postgres_url);
        if (!why.empty()) fail(file, given(*t, "postgres_url"), prefix + "postgres_url", why);
    }
    return s;
}

ClusterSettings worker_settings(const Config& config, bool check_postgres) {
    try {
        return load(*config.app, config.app_source, check_postgres);
    } catch (const ConfigError& e) {
        // The master accepted these; a credential file removed since is this process's problem only.
        spdlog::error("cluster: {}", e.what());
        ClusterSettings s;
        s.error = e.what();
        return s;
    }
}

}  // namespace

ClusterSettings load_cluster_settings(const toml::table& app, const std::string& file) { return load(app, file, true); }

ClusterSettings worker_cluster_settings(const Config& config) { return worker_settings(config, true); }

ClusterSettings worker_redis_settings(const Config& config) { return worker_settings(config, false); }

std::string redacted_url(const std::string& url) {
    auto parsed = boost::urls::parse_uri(url);
    if (!parsed) {   // libpq's multi-host URLs are not RFC 3986 URIs: show the scheme only
        auto colon = url.find("://");
        return colon == std::string::npos ? std::string("***") : url.substr(0, colon) + "://***";
    }
    boost::urls::url u(*parsed);
    if (u.has_password()) u.set_password("***");
    return std::string(u.buffer());
}

}  // namespace agente::cluster
