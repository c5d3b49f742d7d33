// `agente-hibrido db migrate|status`: one connection with the server's [cluster] settings, a line per
// migration applied, a summary an operator (or a deploy script) reads.
#include "app/cluster/cli.hpp"

#include "app/cluster/migrations.hpp"
#include "app/cluster/settings.hpp"
#include "app/common/postgres.hpp"

#include <iostream>

namespace agente::cluster {

namespace {

constexpr const char* usage =
    "usage: agente-hibrido [-c CONFIG] db migrate\n"
    "       agente-hibrido [-c CONFIG] db status\n"
    "\n"
    "migrate  applies the schema migrations the PostgreSQL database of [cluster] postgres_url lacks,\n"
    "         in one transaction; running it again changes nothing.\n"
    "status   the database's schema version and this build's; exit 1 when the database is behind.\n"
    "\n"
    "  -c, --config FILE   the server's config file: the same [cluster] settings\n";

int migrate_command(pg::Connection& c) {
    MigrationReport r = migrate(c);
    for (const auto& applied : r.applied) std::cout << "applied " << applied << "\n";
    if (r.applied.empty()) std::cout << "schema at version " << r.to << ": up to date\n";
    else std::cout << "schema at version " << r.to << " (was " << r.from << ")\n";
    return 0;
}

int status_command(pg::Connection& c) {
    std::optional<int> current = schema_version(c);
    int required = required_schema_version();
    std::cout << "database schema version: " << (current ? std::to_string(*current) : std::string("none")) << "\n"
              << "this build needs:        " << required << "\n";
    if (auto problem = schema_problem(current, required)) {
        std::cout << *problem << "\n";
        return 1;
    }
    return 0;
}

}  // namespace

int run_db_command(const std::vector<std::string>& command, const Config& config) {
    std::vector<std::string> words(command.begin() + 1, command.end());
    if (words.size() == 1 && (words[0] == "-h" || words[0] == "--help")) {
        std::cout << usage;
        return 0;
    }
    if (words.size() != 1 || (words[0] != "migrate" && words[0] != "status")) {
        std::cerr << "Error: db: expected `migrate` or `status`\n\n" << usage;
        return 2;
    }
    try {
        ClusterSettings s = load_cluster_settings(*config.app, config.app_source);
        if (!s.uses_postgres()) {
            std::cerr << "Error: db: no PostgreSQL configured ([cluster] postgres_url, postgres_url_env or "
                         "postgres_url_file); the embedded SQLite store needs no migration\n";
            return 1;
        }
        pg::Options options;
        options.connect_timeout = s.postgres_connect_timeout;
        // A migration may rewrite big tables: the servers' per-statement bound does not apply to it.
        options.statement_timeout = std::chrono::milliseconds(0);
        options.application_name = "agente-hibrido db";
        pg::Connection c(s.postgres_url, options);
        if (words[0] == "migrate") return migrate_command(c);
        return status_command(c);
    } catch (const std::exception& e) {
        std::cerr << "Error: db: " << e.what() << "\n";
        return 1;
    }
}

}  // namespace agente::cluster
