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
