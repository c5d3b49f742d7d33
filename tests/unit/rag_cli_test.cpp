// The `rag` CLI's progress line: what an operator sees on a terminal while a folder is ingested.
#include "app/rag/cli.hpp"

#include <gtest/gtest.h>

using agente::rag::progress_bar;

TEST(RagProgressBar, FillsInProportionToTheFilesDone) {
    EXPECT_EQ(progress_bar("a.md", 0, 4, 80), "[....................] 0/4 a.md");
    EXPECT_EQ(progress_bar("b.md", 2, 4, 80), "[##########..........] 2/4 b.md");
    EXPECT_EQ(progress_bar("c.md", 4, 4, 80), "[####################] 4/4 c.md");
}

TEST(RagProgressBar, ALongPathKeepsItsEndWithinTheWidth) {
    std::string line = progress_bar("/srv/docs/very/deep/folder/structure/of/the/manual/chapter-12.md", 1, 2, 50);
    EXPECT_EQ(line, "[##########..........] 1/2 …e/manual/chapter-12.md");
    EXPECT_EQ(line.size(), 50u + 2);   // "…" is three bytes, one column
}

TEST(RagProgressBar, AnEmptyFolderIsComplete) { EXPECT_EQ(progress_bar("", 0, 0, 80), "[####################] 0/0 "); }

TEST(RagSnippet, FoldsWhitespaceAndCutsBetweenCharacters) {
    using agente::rag::snippet;
    EXPECT_EQ(snippet("  Bees\n\n carry\tpollen  ", 100), "Bees carry pollen");
    EXPECT_EQ(snippet("abcdef", 3), "abc…");
    // "ç" and "ã" are two bytes each: the cut waits for the character to end.
    EXPECT_EQ(snippet("informação", 8), "informaç…");
    EXPECT_EQ(snippet("informação", 10), "informaçã…");
    EXPECT_EQ(snippet("informação", 12), "informação");
    EXPECT_EQ(snippet("ab€cd", 3), "ab€…");   // three bytes: never cut after the second
}
