// [cluster]: the database URLs as secrets (inline, _env, _file: one of them), their forms, the
// timeouts, every error naming server.conf's file:line and never the password; and the schema's
// migrations as a plan over versions.
#include "app/cluster/migrations.hpp"
#include "app/cluster/settings.hpp"

#include <agente/config.hpp>

#include <gtest/gtest.h>
#include <toml++/toml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace agente::cluster {
namespace {

toml::table parse(std::string_view text) { return toml::parse(text, std::string_view("server.conf")); }

// The validator (every process), then the master's load (secrets read, libpq's own check).
std::string error_of(std::string_view text, const std::string& file = "server.conf") {
    toml::table t = parse(text);
    try {
        if (auto* c = t.get_as<toml::table>("cluster")) validate_cluster_section(*c, file);
        load_cluster_settings(t, file);
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "";
}

TEST(ClusterSettings, WithoutATableNothingIsShared) {
    ClusterSettings s = load_cluster_settings(parse(""), "server.conf");
    EXPECT_FALSE(s.uses_postgres());
    EXPECT_EQ(s.redis_url, "");
    EXPECT_EQ(s.postgres_connect_timeout.count(), 5);
    EXPECT_EQ(s.postgres_statement_timeout.count(), 5000);
}

TEST(ClusterSettings, InlineValuesRead) {
    ClusterSettings s = load_cluster_settings(parse(R"(
[cluster]
postgres_url = "postgresql://agente:pw@db:5432/agente?sslmode=require"
redis_url = "redis://cache:6379/0"
postgres_connect_timeout = 3
postgres_statement_timeout = 0.5
)"),
                                              "server.conf");
    EXPECT_TRUE(s.uses_postgres());
    EXPECT_EQ(s.postgres_url, "postgresql://agente:pw@db:5432/agente?sslmode=require");
    EXPECT_EQ(s.redis_url, "redis://cache:6379/0");
    EXPECT_EQ(s.postgres_connect_timeout.count(), 3);
    EXPECT_EQ(s.postgres_statement_timeout.count(), 500);
}

TEST(ClusterSettings, UrlsFromTheEnvironmentAndFromFiles) {
    ::setenv("CLUSTER_TEST_PG", "  postgres://a:b@127.0.0.1/x\n", 1);
    auto dir = std::filesystem::temp_directory_path() / "cluster-settings-test";
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "redis.url") << "redis://u:p@cache:6380/1\n";
    ClusterSettings s = load_cluster_settings(
        parse("[cluster]\npostgres_url_env = \"CLUSTER_TEST_PG\"\nredis_url_file = \"redis.url\"\n"),
        (dir / "server.conf").string());
    EXPECT_EQ(s.postgres_url, "postgres://a:b@127.0.0.1/x");
    EXPECT_EQ(s.redis_url, "redis://u:p@cache:6380/1");
    ::unsetenv("CLUSTER_TEST_PG");
    std::filesystem::remove_all(dir);
}

TEST(ClusterSettings, ErrorsNameTheLineAndNeverThePassword) {
    EXPECT_EQ(error_of("[cluster]\npostgres_uri = \"x\"\n"), "server.conf:2: cluster.postgres_uri: unknown setting");
    EXPECT_EQ(error_of("[cluster]\npostgres_url = \"postgresql://h/db\"\npostgres_url_env = \"X\"\n"),
              "server.conf:3: cluster.postgres_url_env: give one of postgres_url, postgres_url_env or "
              "postgres_url_file, not several");
    EXPECT_EQ(error_of("[cluster]\npostgres_url = \"host=db password=hunter2\"\n"),
              "server.conf:2: cluster.postgres_url: expected a postgresql:// URL "
              "(postgresql://user:password@host:5432/dbname)");
    EXPECT_EQ(error_of("[cluster]\npostgres_url = \"\"\n"), "server.conf:2: cluster.postgres_url: expected a non-empty string");
    EXPECT_EQ(error_of("[cluster]\nredis_url = \"http://cache:6379\"\n"),
              "server.conf:2: cluster.redis_url: expected a redis:// or unix:// URL (redis://host:6379/0)");
    EXPECT_EQ(error_of("[cluster]\nredis_url = \"rediss://cache:6380\"\n"),
              "server.conf:2: cluster.redis_url: rediss:// (TLS) is not supported by Debian 12's hiredis: use "
              "redis:// on a private network, or a unix:// socket");
    EXPECT_EQ(error_of("[cluster]\nstream_lease = 0.5\n"), "server.conf:2: cluster.stream_lease: expected seconds between 1 and 3600, got 0.5");
    EXPECT_EQ(error_of("[cluster]\npostgres_url_env = \"CLUSTER_TEST_UNSET\"\n"),
              "server.conf:2: cluster.postgres_url_env: environment variable CLUSTER_TEST_UNSET is not set");
    EXPECT_EQ(error_of("[cluster]\npostgres_url_file = \"/nonexistent/pg.url\"\n"),
              "server.conf:2: cluster.postgres_url_file: cannot read /nonexistent/pg.url");
    EXPECT_EQ(error_of("[cluster]\npostgres_url = \"postgresql://u:hunter 2@db/x\"\n"),
              "server.conf:2: cluster.postgres_url: the secret has a blank or a control character inside it");
    EXPECT_EQ(error_of("[cluster]\npostgres_connect_timeout = 1\n"),
              "server.conf:2: cluster.postgres_connect_timeout: expected 2..600, got 1");
    // libpq's own check: an unknown option. Its message would quote the URL; this one does not.
    std::string bad = error_of("[cluster]\npostgres_url = \"postgresql://u:hunter2@db/x?frobnicate=1\"\n");
    EXPECT_EQ(bad.substr(0, 45), "server.conf:2: cluster.postgres_url: libpq do");
    EXPECT_EQ(bad.find("hunter2"), std::string::npos) << bad;
}

TEST(ClusterSettings, RedactedUrlsHideThePassword) {
    EXPECT_EQ(redacted_url("postgresql://agente:s3cret@db:5432/agente"), "postgresql://agente:***@db:5432/agente");
    EXPECT_EQ(redacted_url("postgresql://db/agente"), "postgresql://db/agente");
    EXPECT_EQ(redacted_url("postgresql://u:p@db1:5432,db2:5432/agente"), "postgresql://u:***@db1:5432,db2:5432/agente");
    EXPECT_EQ(redacted_url("postgresql://u:p@[::1"), "postgresql://***");   // not a URI at all
}

// config/server.conf's commented [cluster] example, uncommented, must validate.
TEST(ClusterSettings, ExampleConfigValidates) {
    std::ifstream in(std::filesystem::path(AGENTE_SOURCE_DIR) / "config/server.conf");
    ASSERT_TRUE(in);
    std::string text, line;
    bool in_cluster = false;
    while (std::getline(in, line)) {
        if (line.rfind("# [cluster]", 0) == 0) in_cluster = true;
        if (in_cluster && line.rfind("# ---- ", 0) == 0) break;
        if (in_cluster && line.rfind("# ", 0) == 0) text += line.substr(2) + "\n";
    }
    toml::table t = parse(text);
    const toml::table* cluster = t.get_as<toml::table>("cluster");
    ASSERT_NE(cluster, nullptr) << text;
    EXPECT_NO_THROW(validate_cluster_section(*cluster, "server.conf")) << text;
    EXPECT_EQ(cluster->get("postgres_url_file")->value<std::string>(), "postgres-url");
}

// ---- migrations ------------------------------------------------------------------------------

std::vector<Migration> three() { return {{1, "a", "SELECT 1"}, {2, "b", "SELECT 2"}, {3, "c", "SELECT 3"}}; }

std::vector<int> versions(const std::vector<Migration>& ms) {
    std::vector<int> out;
    for (const auto& m : ms) out.push_back(m.version);
    return out;
}

TEST(Migrations, PendingAreThoseAfterTheDatabasesVersionInOrder) {
    EXPECT_EQ(versions(pending_migrations(0, three())), (std::vector<int>{1, 2, 3}));
    EXPECT_EQ(versions(pending_migrations(2, three())), (std::vector<int>{3}));
    EXPECT_EQ(versions(pending_migrations(3, three())), (std::vector<int>{}));
    EXPECT_EQ(versions(pending_migrations(7, three())), (std::vector<int>{}));   // a newer binary migrated
}

TEST(Migrations, ASchemaBehindCannotServeOneAheadCan) {
    EXPECT_EQ(*schema_problem(std::nullopt, 2),
              "the PostgreSQL schema was never created (this build needs version 2): "
              "run `agente-hibrido -c server.conf db migrate`");
    EXPECT_EQ(*schema_problem(1, 2),
              "the PostgreSQL schema is at version 1, this build needs 2: run `agente-hibrido -c server.conf db migrate`");
    EXPECT_FALSE(schema_problem(2, 2));
    EXPECT_FALSE(schema_problem(3, 2));   // an older binary during a rolling upgrade
}

TEST(Migrations, VersionsRunFromOneWithoutGaps) {
    int expected = 1;
    for (const auto& m : migrations()) {
        EXPECT_EQ(m.version, expected++) << m.name;
        EXPECT_FALSE(m.sql.empty()) << m.name;
    }
    EXPECT_EQ(required_schema_version(), int(migrations().size()));
}

}  // namespace
}  // namespace agente::cluster
