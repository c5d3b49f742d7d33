// Counting tokens without the embedding model's tokenizer. Chunk sizes are OpenAI's, in tokens of
// its tokenizer (cl100k); we do not ship that vocabulary, so we approximate it the way it behaves on
// prose: a run of letters counts one token per started 5 letters (most English words are one token,
// long ones two or three; Portuguese words, which cl100k cuts finer, come out closer than with a
// words-per-token ratio), a run of digits one per started 3 (cl100k groups digits by three), every
// other visible character (punctuation, symbols) one, and every CJK character one. Blanks are free.
// On English prose this overcounts slightly, so chunks come out a little smaller than OpenAI's, never
// larger.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace agente::rag {

int count_tokens(std::string_view text);

// Where text may be cut, by strength: the break after a piece.
enum class Break : std::uint8_t { none, line, sentence, paragraph };

// A piece of text: a run of visible characters (at most max_piece_bytes of them, so no piece is
// larger than the smallest chunk) and the blanks after it.
struct Piece {
    std::uint32_t begin;       // of the visible run
    std::uint32_t end;         // of the visible run (the blanks after it are not counted)
    std::uint16_t tokens;
    Break after;
};

inline constexpr std::size_t max_piece_bytes = 64;

std::vector<Piece> split_pieces(std::string_view text);

}  // namespace agente::rag
