// What a grounded answer retrieves from: the vector stores and how much of them, one table of
// settings for a [models."NAME"] route and for an [agents.ID] alike (docs/rag.md), read by one
// function so that the two cannot drift apart.
#pragma once

#include <set>
#include <string>
#include <vector>

namespace toml { inline namespace v3 { class table; } }

namespace agente::app {

// The most sources one grounded answer may put into its prompt (a chunk is up to 800 tokens).
inline constexpr int max_retrieval_sources = 20;
// The most earlier messages a search query may take in beside the question (max_query_chars bounds
// its length in any case).
inline constexpr int max_retrieval_turns = 50;

struct Retrieval {
    // Answers grounded in these vector stores (ids or names), with citations; empty: not grounded.
    std::vector<std::string> vector_stores;
    int max_sources = 5;        // the chunks retrieved into the prompt
    // The messages before the last user message (user and assistant turns, newest first) that join it
    // in the search query, so that a follow-up ("and what about its price?") finds what the
    // conversation is about. 4 is two exchanges back: far enough for a follow-up, near enough that an
    // old topic does not outweigh the question (the question comes first and is never cut).
    int retrieval_turns = 4;

    bool grounded() const { return !vector_stores.empty(); }
};

// The keys read_retrieval() reads, for a table's check_keys().
const std::set<std::string>& retrieval_keys();

// The retrieval settings of table `t` (dotted path `prefix`, e.g. "models.kb."); errors name the
// line, as every settings reader does.
Retrieval read_retrieval(const toml::table& t, const std::string& file, const std::string& prefix);

}  // namespace agente::app
