// Chunking that follows the document's structure (OpenAI's "static" strategy's sizes, in tokens of
// tokens.hpp). A chunk never spans two sections (a change of heading path) or two PDF pages, so the
// section and page a citation names are exact. Within a section, blocks are packed up to
// max_tokens; when the section is longer, each cut falls on the strongest break (paragraph, then
// sentence, then line, then word) in the second half of the window, and the next chunk starts
// overlap_tokens back, at the strongest break there, so it begins at a sentence where one is near.
#pragma once

#include "app/rag/document.hpp"

#include <optional>
#include <string>
#include <vector>

namespace agente::rag {

struct ChunkingOptions {
    int max_tokens = 800;        // OpenAI's default max_chunk_size_tokens
    int overlap_tokens = 400;    // OpenAI's default chunk_overlap_tokens
};

// OpenAI's limits: max_chunk_size_tokens 100..4096, chunk_overlap_tokens 0..half of it. A message
// for a 400 answer when they are not met.
inline constexpr int min_chunk_tokens = 100;
inline constexpr int max_chunk_tokens = 4096;
std::optional<std::string> chunking_problem(const ChunkingOptions& o);

struct Chunk {
    std::string text;
    std::vector<std::string> headings;
    int page = 0;
    int tokens = 0;
};

std::vector<Chunk> chunk_document(const Document& doc, const ChunkingOptions& options);

}  // namespace agente::rag
