// OpenAI's Files and Vector Stores operations as a dirty worker runs them: one request (a packed
// wire head naming `op`, its arguments, and for uploads the file's bytes) in, one packed reply out,
// {"status", "body"} or {"status", "error", "code"}, so the HTTP routes only relay. Every call
// blocks on SQLite (and search on the embedding model): dirty-worker threads only.
#pragma once

#include "app/rag/engine.hpp"

#include <string>
#include <string_view>

namespace agente::rag {

// OpenAI's own limits: file ids per request (a store's file_ids, a batch), and files in one store.
inline constexpr std::size_t max_file_ids_per_request = 500;
inline constexpr long max_files_per_store = 10'000;

// Runs one packed request on `engine`; never throws (a failure is a packed 4xx/5xx reply).
std::string run_api(Engine& engine, std::string_view packed_request);
// Whether an answer of run_api() refuses the request (a status other than 200), told without
// parsing it again (a search page may be large).
bool is_refusal(std::string_view answer);

}  // namespace agente::rag
