// Answers grounded in vector stores, the pure part: the question a chat asks, the numbered sources
// retrieved for it, the prompt that carries them upstream, and the citations an answer makes.
// grounded_chat.cpp does the I/O (the dirty pool's search, the gateway's attempts, the client).
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace agente::rag {

struct Source {
    int number = 0;              // [number] in the prompt and the answer, from 1
    std::string store;           // as the model's vector_stores names it
    std::string file_id, filename;
    std::string section;         // the chunk's heading path, "" at the top of a file
    int page = 0;                // PDF page, 0 otherwise
    std::string text;            // the chunk, quoted to the model and in the citation
    double score = 0;
};

// What a grounded answer searches for: the last user message of OpenAI's `messages` (a string, or
// the text parts of a list), then the text of up to `turns`
// messages before it (user and assistant turns, newest first; system messages are skipped), one a
// line, cut to `max_bytes` between UTF-8 characters. The question comes first so that a cut takes
// the oldest context, never the question; the turns before it let a follow-up such as "and what
// about its price?" find what the conversation is about. "" when no user message has text.
std::string retrieval_query(const nlohmann::json& messages, int turns, std::size_t max_bytes);

// `text` cut to at most `n` bytes, between UTF-8 characters.
std::string cut_utf8(std::string text, std::size_t n);

// The best `max` hits of the stores' search pages (vector_store.search_results.page, one per store
// in `stores`' order), best first, numbered from 1.
std::vector<Source> sources_from(const std::vector<std::string>& stores, const std::vector<nlohmann::json>& pages,
                                 int max);

// The client's chat body with the sources put first as a system message that asks for [n] markers
// and for "not in the sources" rather than a guess.
nlohmann::json with_sources(nlohmann::json body, const std::vector<Source>& sources);

// The sources `answer` cites by [n] (or [n, m]), in the order of their numbers, as OpenAI-style
// objects: {index, file_id, filename, vector_store, section, page, quote, score}. A number no source
// has is ignored; an answer that cites nothing has no citations.
nlohmann::json citations(std::string_view answer, const std::vector<Source>& sources);

// What a grounded model answers when the stores hold nothing for the question: no upstream call,
// nothing to cite.
std::string nothing_found_text();

}  // namespace agente::rag
