// The document parsers that need large libraries (PDF through poppler, HTML through libxml2,
// Markdown through cmark) are built as a module of their own, agente-hibrido-formats.so, opened
// only by a process that ingests (a dirty worker, `agente-hibrido rag ingest`). Linked into the
// binary, poppler and the thirty libraries it brings were mapped and relocated in every HTTP
// worker, which never parses a document (docs/benchmarks.md has the memory it cost).
//
// The module and the binary are built from the same tree; `formats_abi` is what they must agree on
// (bump it whenever Document, Block or the entry point below change shape), checked at load time
// so that a module left from another build is refused with a clear error, never called.
#pragma once

#include "app/rag/document.hpp"

#include <string>
#include <string_view>

namespace agente::rag {

inline constexpr int formats_abi = 1;

// The module's file name, in the build tree beside the binary and installed under
// <prefix>/lib/agente-hibrido/ (scripts/install).
inline constexpr const char* formats_module_name = "agente-hibrido-formats.so";

}  // namespace agente::rag

extern "C" {
// The ABI the module was built with.
int agente_rag_formats_abi();
// Parses `bytes` as `format` (markdown, html or pdf) into `out`; on a refusal false, with OpenAI's
// last_error code and a message (exceptions do not cross the module's boundary).
bool agente_rag_parse_formatted(std::string_view bytes, agente::rag::Format format, agente::rag::Document& out,
                                std::string& code, std::string& message);
}
