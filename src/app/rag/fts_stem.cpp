#include "app/rag/fts_stem.hpp"

#include "app/rag/stemmer_library.hpp"

#include <sqlite3.h>

#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

namespace agente::rag {

namespace {

fts5_api* fts5_of(sqlite3* db) {
    fts5_api* api = nullptr;
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &s, nullptr) == SQLITE_OK) {
        sqlite3_bind_pointer(s, 1, &api, "fts5_api_ptr", nullptr);
        sqlite3_step(s);
    }
    sqlite3_finalize(s);
    return api;
}

// One unicode61 instance with its arguments.
struct Unicode61 {
    fts5_tokenizer api{};
    Fts5Tokenizer* tok = nullptr;

    bool create(fts5_api* fts, const char* diacritics) {
        void* ctx = nullptr;
        if (fts->xFindTokenizer(fts, "unicode61", &ctx, &api) != SQLITE_OK) return false;
        const char* args[] = {"remove_diacritics", diacritics};
        return api.xCreate(ctx, args, 2, &tok) == SQLITE_OK;
    }
    ~Unicode61() {
        if (tok) api.xDelete(tok);
    }
};

struct Stem {
    Unicode61 words;          // remove_diacritics 0: the words as written, case folded
    Unicode61 fold;           // remove_diacritics 2: accents folded
    const StemmerLibrary* library = nullptr;   // opened for a language only: "none" needs none
    sb_stemmer* stemmer = nullptr;             // null for "none"
    ~Stem() {
        if (stemmer) library->destroy(stemmer);
    }

    std::string stem(const char* p, int n) {
        if (!stemmer) return std::string(p, std::size_t(n));
        const sb_symbol* s = library->stem(stemmer, reinterpret_cast<const sb_symbol*>(p), n);
        if (!s) return std::string(p, std::size_t(n));   // out of memory: the word itself
        return std::string(reinterpret_cast<const char*>(s), std::size_t(library->length(stemmer)));
    }

    // The token folded by the second unicode61 (which may, in principle, split it; the pieces are
    // joined back: a stem is one word).
    std::string folded(const std::string& word) {
        std::string out;
        fold.api.xTokenize(fold.tok, &out, FTS5_TOKENIZE_DOCUMENT, word.data(), int(word.size()),
                           [](void* ctx, int, const char* t, int n, int, int) {
                               static_cast<std::string*>(ctx)->append(t, std::size_t(n));
                               return SQLITE_OK;
                           });
        return out;
    }
};

struct Call {
    Stem* stem;
    void* ctx;
    int (*emit)(void*, int, const char*, int, int, int);
};

int on_word(void* p, int tflags, const char* token, int n, int start, int end) {
    Call& c = *static_cast<Call*>(p);
    std::string primary = c.stem->folded(c.stem->stem(token, n));
    if (primary.empty()) return SQLITE_OK;
    int rc = c.emit(c.ctx, tflags, primary.data(), int(primary.size()), start, end);
    if (rc != SQLITE_OK) return rc;
    std::string plain = c.stem->folded(std::string(token, std::size_t(n)));
    if (plain == std::string(token, std::size_t(n))) return SQLITE_OK;   // no accents: nothing else to say
    std::string second = c.stem->stem(plain.data(), int(plain.size()));
    if (second.empty() || second == primary) return SQLITE_OK;
    return c.emit(c.ctx, FTS5_TOKEN_COLOCATED, second.data(), int(second.size()), start, end);
}

int x_create(void* api, const char** args, int n, Fts5Tokenizer** out) {
    auto* fts = static_cast<fts5_api*>(api);
    auto stem = std::make_unique<Stem>();
    if (!stem->words.create(fts, "0") || !stem->fold.create(fts, "2")) return SQLITE_ERROR;
    std::string language = n > 0 ? args[0] : "none";
    if (language != "none") {
        stem->library = &stemmer_library();
        if (!stem->library->loaded()) return SQLITE_ERROR;
        stem->stemmer = stem->library->create(language.c_str(), "UTF_8");
        if (!stem->stemmer) return SQLITE_ERROR;
    }
    *out = reinterpret_cast<Fts5Tokenizer*>(stem.release());
    return SQLITE_OK;
}

void x_delete(Fts5Tokenizer* t) { delete reinterpret_cast<Stem*>(t); }

int x_tokenize(Fts5Tokenizer* t, void* ctx, int flags, const char* text, int n,
               int (*emit)(void*, int, const char*, int, int, int)) {
    auto* stem = reinterpret_cast<Stem*>(t);
    Call call{stem, ctx, emit};
    return stem->words.api.xTokenize(stem->words.tok, &call, flags, text, n, on_word);
}

}  // namespace

void register_stem_tokenizer(sqlite3* db) {
    fts5_api* api = fts5_of(db);
    if (!api) throw std::runtime_error("this SQLite has no FTS5 (full-text search), which the RAG store needs");
    fts5_tokenizer tok{x_create, x_delete, x_tokenize};
    if (api->xCreateTokenizer(api, stem_tokenizer_name, api, &tok, nullptr) != SQLITE_OK)
        throw std::runtime_error(std::string("cannot register the FTS5 tokenizer: ") + sqlite3_errmsg(db));
}

}  // namespace agente::rag
