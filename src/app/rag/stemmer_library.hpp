// libstemmer (Snowball), opened on first use rather than linked. Only a RAG store's connections stem
// words, and those run in the dirty workers or on a store's thread; an HTTP worker that never touches
// a store should not pay for the library: loading it relocates its tables of pointers, ~330 KB of
// private pages in every process of the binary (measured in /proc/PID/smaps), a fifth of a worker.
#pragma once

#include <libstemmer.h>

#include <string>
#include <vector>

namespace agente::rag {

struct StemmerLibrary {
    decltype(&::sb_stemmer_list) list = nullptr;
    decltype(&::sb_stemmer_new) create = nullptr;
    decltype(&::sb_stemmer_delete) destroy = nullptr;
    decltype(&::sb_stemmer_stem) stem = nullptr;
    decltype(&::sb_stemmer_length) length = nullptr;
    std::string error;  // why it could not be opened; empty when every call above is there
    bool loaded() const { return error.empty(); }
};

// Opened once, on the first call (thread-safe); the same object after.
const StemmerLibrary& stemmer_library();

// The languages it stems, for checking a configuration: read from the library opened for the
// occasion and closed after, so that a process that only reads [rag] (every HTTP worker) does not
// keep the library's relocated tables. Empty, with `error` set, when it cannot be opened.
std::vector<std::string> stemmer_languages(std::string& error);

}  // namespace agente::rag
