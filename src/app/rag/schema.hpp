// The RAG database's schema as numbered migrations. PRAGMA user_version is the number of the last
// one applied; opening applies the rest, each in its own transaction with its number, so a process
// killed mid-migration leaves the file at the previous version, and the next open carries on. A file
// from a newer binary (a version past the last known) is refused rather than misread.
#pragma once

#include "app/common/sqlite.hpp"

#include <span>

namespace agente::rag {

struct Migration {
    int version;       // 1, 2, ...: user_version after it
    const char* sql;
};

std::span<const Migration> rag_migrations();

// Applies the migrations past the file's user_version. Throws std::runtime_error for a file of a
// newer schema than `migrations` knows.
void migrate(sqlite::Db& db, std::span<const Migration> migrations);

int user_version(sqlite::Db& db);

}  // namespace agente::rag
