// Token counting and chunking as specifications: sizes in tokens, cuts at the strongest break,
// overlap, and chunks that never span two sections or two pages.
#include "app/rag/chunker.hpp"
#include "app/rag/tokens.hpp"

#include <gtest/gtest.h>

namespace agente::rag {
namespace {

Document doc_of(std::vector<Block> blocks) {
    Document d;
    d.blocks = std::move(blocks);
    return d;
}

// n sentences "wN aaaa bbbb cccc." of 6 tokens each ("w" and N, three 4-letter words, the stop).
std::string sentences(int n, int from = 0) {
    std::string s;
    for (int i = from; i < from + n; ++i) s += "w" + std::to_string(i) + " aaaa bbbb cccc. ";
    s.pop_back();
    return s;
}

TEST(RagTokens, WordsByFiveLettersDigitsByThreePunctuationOneEach) {
    EXPECT_EQ(count_tokens(""), 0);
    EXPECT_EQ(count_tokens("   \n\t "), 0);
    EXPECT_EQ(count_tokens("the bees"), 2);
    EXPECT_EQ(count_tokens("honey"), 1);
    EXPECT_EQ(count_tokens("colony"), 2);
    EXPECT_EQ(count_tokens("internationalization"), 4);
    EXPECT_EQ(count_tokens("2024"), 2);
    EXPECT_EQ(count_tokens("x=1;"), 4);
    EXPECT_EQ(count_tokens("ação"), 1);     // accented letters are letters, counted by code point
    EXPECT_EQ(count_tokens("日本語"), 3);    // a token per CJK character
    EXPECT_EQ(count_tokens("w1 aaaa bbbb cccc."), 6);
    EXPECT_EQ(count_tokens("w12"), 2);        // letters and digits are counted apart
}

TEST(RagTokens, PiecesCarryTheBreakAfterThem) {
    auto p = split_pieces("One two. Three\nfour\n\nFive");
    ASSERT_EQ(p.size(), 5u);
    EXPECT_EQ(p[0].after, Break::none);
    EXPECT_EQ(p[1].after, Break::sentence);
    EXPECT_EQ(p[2].after, Break::line);
    EXPECT_EQ(p[3].after, Break::paragraph);
    EXPECT_EQ(p[4].after, Break::none);
}

TEST(RagTokens, NoPieceIsWiderThanTheBound) {
    std::string blob(1000, 'x');
    auto p = split_pieces(blob);
    EXPECT_EQ(p.size(), 1000 / max_piece_bytes + 1);
    for (auto& piece : p) EXPECT_LE(piece.end - piece.begin, max_piece_bytes);
    // Multi-byte characters are never cut in the middle.
    std::string accents;
    for (int i = 0; i < 100; ++i) accents += "é";
    for (auto& piece : split_pieces(accents)) EXPECT_EQ((piece.end - piece.begin) % 2, 0u);
}

TEST(RagChunking, OpenAIsLimits) {
    EXPECT_FALSE(chunking_problem({800, 400}));
    EXPECT_FALSE(chunking_problem({100, 0}));
    EXPECT_FALSE(chunking_problem({4096, 2048}));
    EXPECT_EQ(*chunking_problem({99, 0}), "max_chunk_size_tokens must be between 100 and 4096, got 99");
    EXPECT_EQ(*chunking_problem({4097, 0}), "max_chunk_size_tokens must be between 100 and 4096, got 4097");
    EXPECT_EQ(*chunking_problem({800, 401}),
              "chunk_overlap_tokens must be between 0 and half of max_chunk_size_tokens (400), got 401");
    EXPECT_TRUE(chunking_problem({800, -1}));
}

TEST(RagChunking, ASectionThatFitsIsOneChunkWhateverItsBlocks) {
    auto c = chunk_document(doc_of({{"First paragraph.", {"A"}, 0}, {"- an item", {"A"}, 0}}), {800, 400});
    ASSERT_EQ(c.size(), 1u);
    EXPECT_EQ(c[0].text, "First paragraph.\n\n- an item");
    EXPECT_EQ(c[0].headings, (std::vector<std::string>{"A"}));
    EXPECT_EQ(c[0].tokens, count_tokens(c[0].text));
}

TEST(RagChunking, ChunksNeverSpanTwoSectionsOrTwoPages) {
    auto c = chunk_document(doc_of({{"one", {"A"}, 0}, {"two", {"A", "B"}, 0}, {"three", {"A"}, 0},
                                    {"p1", {}, 1}, {"p2", {}, 2}}),
                            {800, 400});
    ASSERT_EQ(c.size(), 5u);
    EXPECT_EQ(c[1].headings, (std::vector<std::string>{"A", "B"}));
    EXPECT_EQ(c[2].text, "three");
    EXPECT_EQ(c[3].page, 1);
    EXPECT_EQ(c[4].page, 2);
}

TEST(RagChunking, ALongSectionIsCutAtSentencesWithinTheSizeAndOverlaps) {
    // 100 sentences of 6 tokens: 600 tokens, chunks of at most 100 with 50 of overlap.
    auto c = chunk_document(doc_of({{sentences(100), {}, 0}}), {100, 50});
    ASSERT_GT(c.size(), 5u);
    for (auto& ch : c) {
        EXPECT_LE(ch.tokens, 100);
        EXPECT_GE(ch.tokens, 50);
        EXPECT_EQ(ch.text.back(), '.') << ch.text;        // ends at a sentence
        EXPECT_EQ(ch.text[0], 'w') << ch.text;            // starts at one
    }
    EXPECT_EQ(c[0].text, sentences(16));                  // 96 tokens: the 17th sentence would not fit
    EXPECT_EQ(c[1].text.substr(0, 3), "w8 ");             // 48 tokens back, at a sentence
    EXPECT_NE(c.back().text.find("w99 aaaa bbbb cccc."), std::string::npos);   // nothing lost at the end
}

TEST(RagChunking, AParagraphBreakIsPreferredToASentenceInTheSecondHalf) {
    // 12 sentences (72 tokens), a paragraph, 40 more sentences: the first cut falls at the paragraph,
    // not at the 16th sentence.
    auto c = chunk_document(doc_of({{sentences(12), {}, 0}, {sentences(40, 12), {}, 0}}), {100, 0});
    EXPECT_EQ(c[0].text, sentences(12));
    EXPECT_EQ(c[1].text.substr(0, 4), "w12 ");
}

TEST(RagChunking, WithoutOverlapEveryPieceIsInExactlyOneChunk) {
    std::string text = sentences(200);
    auto c = chunk_document(doc_of({{text, {}, 0}}), {100, 0});
    std::string joined;
    for (auto& ch : c) joined += (joined.empty() ? "" : " ") + ch.text;
    EXPECT_EQ(joined, text);
}

TEST(RagChunking, TextWithoutBlanksIsStillCutWithinTheSize) {
    auto c = chunk_document(doc_of({{std::string(20000, 'z'), {}, 0}}), {100, 20});
    for (auto& ch : c) EXPECT_LE(ch.tokens, 100);
    EXPECT_GT(c.size(), 40u);
}

}  // namespace
}  // namespace agente::rag
