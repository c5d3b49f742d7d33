// The words of a search query, for the full-text indexes of both stores (SQLite's FTS5 and
// PostgreSQL's tsquery): runs of letters and digits (any non-ASCII byte counts as a letter), so that
// nothing of the query's punctuation can be read as either index's query syntax.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace agente::rag {

// A bound on the terms of one query: each is a posting list the index walks.
inline constexpr std::size_t max_query_terms = 64;

// The first max_query_terms words of `text`, in order.
std::vector<std::string_view> query_words(std::string_view text);

// The words joined by `separator`, each between `quote`s (FTS5: "a" OR "b"; tsquery: a | b).
std::string join_query_words(std::string_view text, std::string_view separator, std::string_view quote);

}  // namespace agente::rag
