// What each parser makes of a file: blocks in reading order with their heading path (and page), and
// a clear refusal, with OpenAI's error code, for what cannot be read.
#include "app/rag/document.hpp"

#include "rag_fixtures.hpp"

#include <gtest/gtest.h>

namespace agente::rag {
namespace {

using testing::fixture;

std::vector<std::string> texts(const Document& d) {
    std::vector<std::string> out;
    for (auto& b : d.blocks) out.push_back(b.text);
    return out;
}

std::string code_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const IngestError& e) {
        return e.code() + ": " + e.what();
    }
    return "no error";
}

TEST(RagDetect, PdfMagicWinsOverEverythingElse) {
    EXPECT_EQ(detect_format("text/plain", "notes.txt", "%PDF-1.7\n..."), Format::pdf);
    EXPECT_EQ(detect_format("", "x", "\r\n%PDF-1.4"), Format::pdf);   // anywhere in the first KiB
}

TEST(RagDetect, ASpecificContentTypeThenTheExtensionThenTextPlain) {
    EXPECT_EQ(detect_format("text/markdown; charset=utf-8", "a.txt", "# x"), Format::markdown);
    EXPECT_EQ(detect_format("TEXT/HTML", "a", "<p>"), Format::html);
    EXPECT_EQ(detect_format("text/plain", "README.md", "# x"), Format::markdown);   // clients send text/plain
    EXPECT_EQ(detect_format("application/octet-stream", "index.HTM", "<p>"), Format::html);
    EXPECT_EQ(detect_format("", "main.cpp", "int x;"), Format::text);
    EXPECT_EQ(detect_format("text/plain", "notes.weird", "hello"), Format::text);
    EXPECT_EQ(detect_format("", "README", "hello"), Format::text);   // no extension, text content
    EXPECT_EQ(detect_format("", "doc.pdf", "not really"), Format::pdf);   // poppler will say it is broken
}

TEST(RagDetect, ImagesArchivesAndBinaryAreUnsupportedWithAMessageSayingWhat) {
    EXPECT_EQ(code_of([] { detect_format("image/png", "photo.png", "\x89PNG"); }),
              "unsupported_file: unsupported file type (image/png, .png): text, Markdown, HTML and PDF files can be "
              "ingested");
    EXPECT_EQ(code_of([] { detect_format("", "a.zip", "PK"); }).substr(0, 46),
              "unsupported_file: unsupported file type (.zip)");
    EXPECT_EQ(code_of([] { detect_format("", "blob", std::string("\0\1\2", 3)); }).substr(0, 57),
              "unsupported_file: unsupported file type (binary content):");
}

TEST(RagParseText, ParagraphsAtBlankLinesAndEncodingsToUtf8) {
    Document d = parse_text("First line\nsame paragraph.\n\n\n  Second.  \n");
    EXPECT_EQ(texts(d), (std::vector<std::string>{"First line\nsame paragraph.", "Second."}));
    EXPECT_EQ(texts(parse_text(fixture("latin1.txt"))),
              (std::vector<std::string>{"Café com açúcar.", "Segundo parágrafo."}));
    EXPECT_EQ(texts(parse_text(fixture("utf16.txt"))), (std::vector<std::string>{"Olá"}));
    EXPECT_EQ(texts(parse_text("\xEF\xBB\xBFwith a BOM")), (std::vector<std::string>{"with a BOM"}));
    EXPECT_EQ(code_of([] { parse_text(std::string("a\0b", 3)); }),
              "invalid_file: binary content (NUL bytes) in a file of a text type");
}

TEST(RagParseMarkdown, HeadingsMakeThePathAndEachItemIsABlock) {
    Document d = parse_markdown(fixture("guide.md"));
    ASSERT_EQ(d.blocks.size(), 9u);
    EXPECT_EQ(d.blocks[0].text, "An introduction to keeping honey bees at home.");
    EXPECT_EQ(d.blocks[0].headings, (std::vector<std::string>{"Beekeeping"}));
    EXPECT_EQ(d.blocks[1].headings, (std::vector<std::string>{"Beekeeping", "The colony"}));
    EXPECT_EQ(d.blocks[2].text, "- The queen lays the eggs.");
    EXPECT_EQ(d.blocks[3].text, "- Workers gather nectar and pollen.");
    EXPECT_EQ(d.blocks[4].text, "- Older workers forage far from the hive.");   // nested: its own block
    EXPECT_EQ(d.blocks[5].text, "- Drones mate with queens.");
    EXPECT_EQ(d.blocks[6].headings, (std::vector<std::string>{"Beekeeping", "The colony", "Seasons"}));
    EXPECT_EQ(d.blocks[7].text, "extract -> filter -> jar");
    EXPECT_EQ(d.blocks[7].headings, (std::vector<std::string>{"Beekeeping", "Harvest"}));   // ### popped
    EXPECT_EQ(d.blocks[8].text, "Never take the honey the colony needs for winter.");
}

TEST(RagParseMarkdown, DeepNestingCostsNoStack) {
    std::string deep(100'000, '>');
    deep += " deep";
    Document d = parse_markdown(deep);
    EXPECT_EQ(texts(d), (std::vector<std::string>{"deep"}));
}

TEST(RagParseHtml, TextAsABrowserShowsItWithoutScriptsStylesOrNavigation) {
    Document d = parse_html(fixture("page.html"));
    EXPECT_EQ(d.title, "Marés e Luas");
    EXPECT_EQ(texts(d), (std::vector<std::string>{"As marés sobem e descem duas vezes por dia.",
                                                  "A gravidade da Lua & do Sol.", "- Maré alta", "- Maré baixa",
                                                  "Hora | Altura", "06:00 | 3,2 m", "linha 1\n  linha 2"}));
    EXPECT_EQ(d.blocks[0].headings, (std::vector<std::string>{"Marés"}));
    EXPECT_EQ(d.blocks[1].headings, (std::vector<std::string>{"Marés", "Causas"}));
}

TEST(RagParseHtml, BrokenMarkupIsRecoveredNotRefused) {
    Document d = parse_html("<p>one<p>two <b>bold<div>three");
    EXPECT_EQ(texts(d), (std::vector<std::string>{"one", "two bold", "three"}));
}

TEST(RagParsePdf, EachPageIsCitedByItsNumber) {
    Document d = parse_pdf(fixture("two_pages.pdf"));
    EXPECT_EQ(d.title, "Nature Notes");
    ASSERT_GE(d.blocks.size(), 2u);
    EXPECT_EQ(d.blocks.front().page, 1);
    EXPECT_NE(d.blocks.front().text.find("Honey bees live in hives."), std::string::npos);
    EXPECT_EQ(d.blocks.back().page, 2);
    EXPECT_EQ(d.blocks.back().text, "Ocean tides rise and fall twice a day, pulled by the gravity of the moon.");
}

TEST(RagParsePdf, BrokenAndEncryptedFilesAreRefusedSayingWhy) {
    EXPECT_EQ(code_of([] { parse_pdf(fixture("broken.pdf")); }),
              "invalid_file: not a readable PDF (damaged or not a PDF)");
    EXPECT_EQ(code_of([] { parse_pdf("plain words"); }), "invalid_file: not a readable PDF (damaged or not a PDF)");
    std::string enc = code_of([] { parse_pdf(fixture("encrypted.pdf")); });
    EXPECT_TRUE(enc.rfind("invalid_file: ", 0) == 0) << enc;
}

}  // namespace
}  // namespace agente::rag
