// OpenAI's Files and Vector Stores objects, in and out: what the dirty workers' jobs answer (and the
// HTTP routes relay), so unchanged OpenAI clients read them. Requests are checked here, each problem
// a message for a 400 answer that names the field.
#pragma once

#include "app/rag/engine.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace agente::rag {

nlohmann::json file_json(const FileRecord& f);
nlohmann::json store_json(const StoreRecord& s);
nlohmann::json attachment_json(const AttachmentRecord& a);
nlohmann::json batch_json(const std::string& id, const std::string& store_id, long created_at, const FileCounts& c);
// vector_store.search_results.page; each result also carries "chunk": {"section", "page", "index"},
// which OpenAI's clients ignore and citations use.
nlohmann::json search_page_json(const SearchPage& page);
// {"object": "list", "data", "first_id", "last_id", "has_more"}.
nlohmann::json list_json(nlohmann::json data, bool has_more, const char* id_key = "id");

// The body of POST /vector_stores/{id}/search. A query longer than max_query_chars is refused.
inline constexpr std::size_t max_query_chars = 4096;
std::optional<SearchRequest> parse_search_request(const nlohmann::json& body, std::string& problem);

// chunking_strategy: absent or {"type": "auto"} is OpenAI's default (800/400); {"type": "static",
// "static": {max_chunk_size_tokens, chunk_overlap_tokens}} within OpenAI's limits.
std::optional<ChunkingOptions> parse_chunking(const nlohmann::json* strategy, std::string& problem);

}  // namespace agente::rag
