// multipart/form-data as clients send it (curl, Python, the openai Node client's form-data), and the
// malformed bodies a server must refuse rather than misread.
#include "app/common/multipart.hpp"

#include <gtest/gtest.h>

using namespace agente::app;

namespace {

std::string body_of(const std::string& b) {
    return "--" + b + "\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nassistants\r\n" + "--" + b +
           "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a \\\"b\\\".md\"\r\n"
           "Content-Type: text/markdown\r\n\r\n# T\r\n\r\nline\r\n--not-it\r\n" + "--" + b + "--\r\n";
}

}  // namespace

TEST(Multipart, BoundaryComesFromTheContentTypeQuotedOrNot) {
    EXPECT_EQ(form_boundary("multipart/form-data; boundary=abc"), "abc");
    EXPECT_EQ(form_boundary("Multipart/Form-Data;boundary=\"a b:c\""), "a b:c");
    EXPECT_EQ(form_boundary("multipart/form-data; charset=utf-8; boundary=x1"), "x1");
    EXPECT_FALSE(form_boundary("application/json"));
    EXPECT_FALSE(form_boundary("multipart/form-data"));
    EXPECT_FALSE(form_boundary("multipart/form-data; boundary=" + std::string(71, 'x')));
    EXPECT_FALSE(form_boundary("multipart/form-data; boundary=\"open"));
}

TEST(Multipart, FieldsAndFilesWithTheirBytesExactly) {
    std::string body = body_of("XyZ");
    std::string problem;
    auto parts = parse_form(body, "XyZ", problem);
    ASSERT_TRUE(parts) << problem;
    ASSERT_EQ(parts->size(), 2u);
    EXPECT_EQ((*parts)[0].name, "purpose");
    EXPECT_FALSE((*parts)[0].has_filename);
    EXPECT_EQ((*parts)[0].data, "assistants");
    const FormPart* file = form_field(*parts, "file");
    ASSERT_NE(file, nullptr);
    EXPECT_EQ(file->filename, "a \"b\".md");
    EXPECT_EQ(file->content_type, "text/markdown");
    EXPECT_EQ(file->data, "# T\r\n\r\nline\r\n--not-it");   // a line like a boundary is data
    EXPECT_EQ(form_field(*parts, "nope"), nullptr);
}

TEST(Multipart, APreambleAndEpilogueAreIgnoredAndBinaryBytesKept) {
    std::string data("\0\r\n\xff--", 6);
    std::string body = "preamble\r\n--b\r\ncontent-disposition: form-data; name=f; filename=x.bin\r\n\r\n" + data +
                       "\r\n--b--\r\nepilogue";
    std::string problem;
    auto parts = parse_form(body, "b", problem);
    ASSERT_TRUE(parts) << problem;
    ASSERT_EQ(parts->size(), 1u);
    EXPECT_EQ((*parts)[0].filename, "x.bin");
    EXPECT_EQ((*parts)[0].data, data);
}

TEST(Multipart, MalformedBodiesAreRefusedWithAReason) {
    std::string problem;
    EXPECT_FALSE(parse_form("no boundary here", "b", problem));
    EXPECT_NE(problem.find("boundary"), std::string::npos);
    // No closing delimiter: the upload was cut short.
    EXPECT_FALSE(parse_form("--b\r\nContent-Disposition: form-data; name=f\r\n\r\ndata", "b", problem));
    EXPECT_NE(problem.find("closing"), std::string::npos);
    // A part without a name.
    EXPECT_FALSE(parse_form("--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--", "b", problem));
    EXPECT_FALSE(parse_form("--b\r\n\r\nx\r\n--b--", "b", problem));
    // Headers that never end.
    EXPECT_FALSE(parse_form("--b\r\nContent-Disposition: form-data; name=f\r\n", "b", problem));
    // Garbage after a boundary.
    EXPECT_FALSE(parse_form("--bjunk\r\n\r\n--b--", "b", problem));
    // Too many parts.
    std::string many;
    for (int i = 0; i < 3; ++i) many += "--b\r\nContent-Disposition: form-data; name=f\r\n\r\nx\r\n";
    many += "--b--";
    EXPECT_TRUE(parse_form(many, "b", problem, 3));
    EXPECT_FALSE(parse_form(many, "b", problem, 2));
    EXPECT_NE(problem.find("parts"), std::string::npos);
}
