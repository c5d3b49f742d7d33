// The FTS5 tokenizer of the RAG store, `agente_stem LANGUAGE`: SQLite's unicode61 finds the words and
// folds their case, a Snowball stemmer (libstemmer) for the store's language reduces each to its
// stem, and unicode61 with remove_diacritics=2 folds the accents of the stem. The stemmer runs before
// the folding because Snowball's rules know their language's accents (Portuguese "-ção", "-ões");
// text typed without them (a query "acoes") is met by a second token at the same position, the stem
// of the folded word, so accented and unaccented spellings find each other either way round.
//
// A tokenizer lives in the connection, not the file: every connection that reads or writes the FTS
// tables registers it first (the sqlite3 shell cannot query them; the other tables stay readable).
#pragma once

struct sqlite3;

namespace agente::rag {

// Throws std::runtime_error when FTS5 is missing from this SQLite.
void register_stem_tokenizer(sqlite3* db);

inline constexpr const char* stem_tokenizer_name = "agente_stem";

}  // namespace agente::rag
