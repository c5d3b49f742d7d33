// The operators' `rag` command (`agente-hibrido [-c server.conf] rag ingest|search ...`), run in its
// own process beside a running server or without one: the same [rag] settings, state directory and
// embedding model as the server, the engine called directly (SQLite in WAL mode lets it write while
// the dirty workers read; their indexes follow the store's generation).
#pragma once

#include <agente/config.hpp>

#include <iosfwd>
#include <string>
#include <vector>

namespace agente::rag {

// `command` starts with "rag". Returns the exit code: 0 done, 1 something failed (a file not
// ingested, an unknown store), 2 a usage error.
int run_rag_command(const std::vector<std::string>& command, const Config& config);

// The progress line drawn on a terminal: "[#####.....]  12/40  path", cut to `width` columns.
std::string progress_bar(const std::string& path, std::size_t done, std::size_t total, std::size_t width);

// A chunk's text as one line under a search result: whitespace runs as one blank, cut at the first
// UTF-8 character boundary past `limit` bytes, with "…" when cut.
std::string snippet(const std::string& text, std::size_t limit);

}  // namespace agente::rag
