/*
 * aws/sigv4 on its own: the parts of a canonical request that the suite
 * (test_sigv4_conformance.c) does not reach or that must hold without it,
 * the signing key against AWS's published example, and the rule that no
 * secret ever reaches an error message.
 */
#include <stdio.h>
#include <string.h>

#include "aws/sigv4.h"
#include "test.h"

#define EMPTY_SHA256 \
  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* AWS's example credentials, as the suite uses them. */
#define AKID "AKIDEXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define TOKEN "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"

/* 2015-08-30T12:36:00Z, the suite's time. */
#define SUITE_TIME 1440938160

static const mt_aws_header_t host[] = {{"Host", "example.amazonaws.com"}};

static mt_sigv4_req_t get_request(void) {
  mt_sigv4_req_t req = {0};
  req.method = "GET";
  req.path = "/";
  req.headers = host;
  req.nheaders = 1;
  req.region = "us-east-1";
  req.service = "service";
  req.time = SUITE_TIME;
  return req;
}

/* Line n (from 0) of text, copied into out. */
static const char *line_of(const char *text, int n, char *out, size_t cap) {
  for (; n > 0 && text != NULL; n--) {
    text = strchr(text, '\n');
    text = text ? text + 1 : NULL;
  }
  if (text == NULL)
    return NULL;
  size_t len = strcspn(text, "\n");
  snprintf(out, cap, "%.*s", (int)len, text);
  return out;
}

/* The canonical URI that req gets with path. */
static void assert_uri(mt_sigv4_req_t req, const char *path,
                       const char *expected) {
  mt_sigv4_t sig = {0};
  mt_err_t err = {{0}};
  char line[256];
  req.path = path;
  ASSERT_EQ_INT(
      mt_sigv4_sign(&req, &(mt_aws_creds_t){AKID, SECRET, NULL}, &sig, &err),
      0);
  ASSERT_EQ_STR(line_of(sig.canonical_request.data, 1, line, sizeof line),
                expected);
  mt_sigv4_free(&sig);
}

/* The canonical query string that query gets. */
static void assert_query(const char *query, const char *expected) {
  mt_sigv4_req_t req = get_request();
  mt_sigv4_t sig = {0};
  mt_err_t err = {{0}};
  char line[512];
  req.query = query;
  ASSERT_EQ_INT(
      mt_sigv4_sign(&req, &(mt_aws_creds_t){AKID, SECRET, NULL}, &sig, &err),
      0);
  ASSERT_EQ_STR(line_of(sig.canonical_request.data, 2, line, sizeof line),
                expected);
  mt_sigv4_free(&sig);
}

TEST(sigv4_session_token) {
  /* get-vanilla-with-session-token, checked here without the suite. */
  mt_sigv4_req_t req = get_request();
  mt_aws_creds_t creds = {AKID, SECRET, TOKEN};
  mt_sigv4_t sig = {0};
  mt_err_t err = {{0}};
  ASSERT_EQ_INT(mt_sigv4_sign(&req, &creds, &sig, &err), 0);
  ASSERT_EQ_STR(sig.canonical_request.data,
                "GET\n/\n\nhost:example.amazonaws.com\n"
                "x-amz-date:20150830T123600Z\n"
                "x-amz-security-token:" TOKEN "\n\n"
                "host;x-amz-date;x-amz-security-token\n" EMPTY_SHA256);
  ASSERT_EQ_STR(sig.signature, "07ec1639c89043aa0e3e2de82b96708f198cceab042d4"
                               "a97044c66dd9f74e7f8");
  ASSERT_EQ_STR(sig.authorization.data,
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/"
                "service/aws4_request, SignedHeaders=host;x-amz-date;"
                "x-amz-security-token, Signature=07ec1639c89043aa0e3e2de82b967"
                "08f198cceab042d4a97044c66dd9f74e7f8");
  ASSERT_EQ_INT(sig.nheaders, 3);
  ASSERT_EQ_STR(sig.headers[0].name, "X-Amz-Date");
  ASSERT_EQ_STR(sig.headers[0].value, "20150830T123600Z");
  ASSERT_EQ_STR(sig.headers[1].name, "X-Amz-Security-Token");
  ASSERT_EQ_STR(sig.headers[1].value, TOKEN);
  ASSERT_EQ_STR(sig.headers[2].name, "Authorization");
  ASSERT_EQ_STR(sig.headers[2].value, sig.authorization.data);

  /* Unsigned, the token is still sent but is no longer in the signature. */
  req.flags = MT_SIGV4_UNSIGNED_TOKEN;
  ASSERT_EQ_INT(mt_sigv4_sign(&req, &creds, &sig, &err), 0);
  ASSERT_TRUE(strstr(sig.canonical_request.data, TOKEN) == NULL);
  ASSERT_TRUE(strstr(sig.authorization.data, "SignedHeaders=host;x-amz-date,"));
  ASSERT_EQ_INT(sig.nheaders, 3);
  ASSERT_EQ_STR(sig.headers[1].value, TOKEN);

  /* An empty token is no token. */
  creds.session_token = "";
  req.flags = 0;
  ASSERT_EQ_INT(mt_sigv4_sign(&req, &creds, &sig, &err), 0);
  ASSERT_EQ_STR(sig.signature, "5fa00fa31553b73ebf1942676e86291e8372ff2a22609"
                               "56d9b8aae1d763fbf31");
  ASSERT_EQ_INT(sig.nheaders, 2);
  mt_sigv4_free(&sig);
}

TEST(sigv4_empty_body) {
  mt_sigv4_req_t req = get_request();
  mt_aws_creds_t creds = {AKID, SECRET, NULL};
  mt_sigv4_t a = {0}, b = {0};
  mt_err_t err = {{0}};
  req.method = "POST";
  ASSERT_EQ_INT(mt_sigv4_sign(&req, &creds, &a, &err), 0);
  ASSERT_EQ_STR(a.payload_hash, EMPTY_SHA256);
  /* A body of no bytes, given or not, is the same request. */
  req.body = "";
  ASSERT_EQ_INT(mt_sigv4_sign(&req, &creds, &b, &err), 0);
  ASSERT_EQ_STR(b.signature, a.signature);
  /* post-vanilla's signature. */
  ASSERT_EQ_STR(a.signature, "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37"
                             "dddb68e92efbe5d6b");
  /* A length without bytes is a mistake, not an empty body. */
  req.body = NULL;
  req.body_len = 5;
  ASSERT_EQ_INT(mt_sigv4_sign(&req, &creds, &b, &err), MT_EINVAL);
  ASSERT_TRUE(b.canonical_request.data == NULL && b.nheaders == 0);
  /* A body is hashed whole, and x-amz-content-sha256 carries the hash
   * when asked for. */
  req.body = "Param1=value1";
  req.body_len = 13;
  req.flags = MT_SIGV4_CONTENT_SHA256;
  ASSERT_EQ_INT(mt_sigv4_sign(&req, &creds, &b, &err), 0);
  ASSERT_EQ_STR(b.payload_hash, "9095672bbd1f56dfc5b65f3e153adc8731a4a654192"
                                "329106275f4c7b24d0b6e");
  ASSERT_EQ_INT(b.nheaders, 3);
  ASSERT_EQ_STR(b.headers[1].name, "x-amz-content-sha256");
  ASSERT_EQ_STR(b.headers[1].value, b.payload_hash);
  mt_sigv4_free(&a);
  mt_sigv4_free(&b);
}

TEST(sigv4_query_reserved_characters) {
  /* Decoded and encoded again: %20 stays, '+' is a literal plus, "/=" are
   * escaped, lower-case escapes come out upper-case, a key without '='
   * gets one, empty parameters vanish. Sorted by key, then value. */
  assert_query("b=a%20b&a=x+y&c=%2F%3D&flag&k=%e2%9c%93&a=w&=v&&",
               "=v&a=w&a=x%2By&b=a%20b&c=%2F%3D&flag=&k=%E2%9C%93");
  /* Reserved characters sent raw are escaped too. */
  assert_query("q=a/b:c@d?e", "q=a%2Fb%3Ac%40d%3Fe");
  /* The order is that of the encoded keys: "%" < "-" < "B" < "_". */
  assert_query("a-b=1&a_b=2&aB=3&a%20b=4", "a%20b=4&a-b=1&aB=3&a_b=2");
  assert_query("-._~=~._-", "-._~=~._-");
  assert_query("", "");

  /* A '%' that escapes nothing is refused rather than guessed at. */
  mt_sigv4_req_t req = get_request();
  mt_sigv4_t sig = {0};
  mt_err_t err = {{0}};
  const char *bad[] = {"a=%zz", "a=%4", "a=%", "%G0=1"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    req.query = bad[i];
    ASSERT_EQ_INT(
        mt_sigv4_sign(&req, &(mt_aws_creds_t){AKID, SECRET, NULL}, &sig, &err),
        MT_EINVAL);
    ASSERT_TRUE(strstr(err.msg, "query parameter 1") != NULL);
  }
}

TEST(sigv4_path_encoding) {
  mt_sigv4_req_t req = get_request();
  /* Raw bytes are encoded once: a space, UTF-8 ("é", "ሴ"). */
  assert_uri(req, "/a b/\xc3\xa9", "/a%20b/%C3%A9");
  assert_uri(req, "/\xe1\x88\xb4", "/%E1%88%B4");
  /* A path already encoded for the wire is encoded again, as services
   * other than S3 check it. */
  assert_uri(req, "/a%20b/%C3%A9", "/a%2520b/%25C3%25A9");
  assert_uri(req, "/q/a+b=c", "/q/a%2Bb%3Dc");
  /* Normalised: no ".", "..", "//"; a trailing '/' kept. */
  assert_uri(req, "", "/");
  assert_uri(req, "/a/./b/../c//d/", "/a/c/d/");
  assert_uri(req, "/a/b/..", "/a");
  assert_uri(req, "/../..", "/");
  assert_uri(req, "/a/..b/.c", "/a/..b/.c");
  /* Without normalisation the path is encoded as it is. */
  req.flags = MT_SIGV4_NO_NORMALIZE;
  assert_uri(req, "/a/./b/../c//d/", "/a/./b/../c//d/");
  assert_uri(req, "/a b", "/a%20b");
  assert_uri(req, "", "/");
}

TEST(sigv4_signing_key) {
  /* AWS's example in "Create a signed AWS API request" (IAM, 2012-02-15):
   * kSigning = f4780e2d...404d. */
  unsigned char key[MT_SIGV4_KEY_LEN];
  char hex[2 * MT_SIGV4_KEY_LEN + 1];
  mt_err_t err = {{0}};
  ASSERT_EQ_INT(
      mt_sigv4_signing_key(SECRET, "20120215", "us-east-1", "iam", key, &err),
      0);
  for (size_t i = 0; i < sizeof key; i++)
    snprintf(hex + 2 * i, 3, "%02x", key[i]);
  ASSERT_EQ_STR(hex, "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d"
                     "414db404d");
}

TEST(sigv4_header_canonical_form) {
  /* Names lower-cased and sorted, values trimmed with inner runs (folds
   * included) made one space, a repeated name's values joined in the order
   * sent. */
  const mt_aws_header_t hs[] = {{"X-B", "  two\t words  "},
                                {"Host", "example.amazonaws.com"},
                                {"x-a", "1"},
                                {"X-A", "folded\r\n  line"},
                                {"X-a", ""}};
  mt_sigv4_req_t req = get_request();
  mt_sigv4_t sig = {0};
  mt_err_t err = {{0}};
  req.headers = hs;
  req.nheaders = sizeof hs / sizeof *hs;
  ASSERT_EQ_INT(
      mt_sigv4_sign(&req, &(mt_aws_creds_t){AKID, SECRET, NULL}, &sig, &err),
      0);
  ASSERT_EQ_STR(sig.canonical_request.data,
                "GET\n/\n\nhost:example.amazonaws.com\n"
                "x-a:1,folded line,\nx-amz-date:20150830T123600Z\n"
                "x-b:two words\n\nhost;x-a;x-amz-date;x-b\n" EMPTY_SHA256);
  /* Signing again into the same result (a retry) reuses it. */
  req.time += 1;
  ASSERT_EQ_INT(
      mt_sigv4_sign(&req, &(mt_aws_creds_t){AKID, SECRET, NULL}, &sig, &err),
      0);
  ASSERT_EQ_STR(sig.amz_date, "20150830T123601Z");
  ASSERT_TRUE(strstr(sig.canonical_request.data, "123601Z") != NULL);
  ASSERT_TRUE(strstr(sig.canonical_request.data, "123600Z") == NULL);
  mt_sigv4_free(&sig);
  mt_sigv4_free(&sig);
  mt_sigv4_free(NULL);
}

TEST(sigv4_no_secret_in_errors) {
  /* Every refusal, with the secret and the token put where a careless
   * caller might put them: no message may quote either. */
  const mt_aws_header_t secret_value[] = {host[0], {"X-Leak", SECRET "\nX: y"}};
  const mt_aws_header_t secret_ctl[] = {host[0], {"X-Leak", TOKEN "\x01"}};
  const mt_aws_header_t ours[] = {host[0], {"Authorization", SECRET}};
  const mt_aws_header_t token_hdr[] = {host[0],
                                       {"X-Amz-Security-Token", TOKEN}};
  const mt_aws_header_t no_host[] = {{"X-Leak", SECRET}};
  const mt_aws_header_t bad_name[] = {host[0], {SECRET, "v"}};
  struct {
    const char *what;
    mt_sigv4_req_t req;
    mt_aws_creds_t creds;
  } cases[20];
  size_t n = 0;
  mt_sigv4_req_t base = get_request();
  mt_aws_creds_t good = {AKID, SECRET, TOKEN};

#define CASE(what_, field_, value_) \
  do {                              \
    cases[n].what = what_;          \
    cases[n].req = base;            \
    cases[n].creds = good;          \
    cases[n].field_ = value_;       \
    n++;                            \
  } while (0)
  CASE("header value with a bare line break", req.headers, secret_value);
  cases[n - 1].req.nheaders = 2;
  CASE("header value with a control character", req.headers, secret_ctl);
  cases[n - 1].req.nheaders = 2;
  CASE("Authorization given", req.headers, ours);
  cases[n - 1].req.nheaders = 2;
  CASE("token header given", req.headers, token_hdr);
  cases[n - 1].req.nheaders = 2;
  CASE("no Host", req.headers, no_host);
  CASE("secret as a header name", req.headers, bad_name);
  cases[n - 1].req.nheaders = 2;
  CASE("secret as the region", req.region, SECRET);
  CASE("secret as the service", req.service, SECRET);
  CASE("secret as the method", req.method, SECRET);
  CASE("secret as a relative path", req.path, SECRET);
  CASE("secret in a bad query", req.query, "k=" SECRET "%zz");
  CASE("time before 1970", req.time, -1);
  CASE("secret as the access key id", creds.access_key_id, SECRET);
  CASE("no access key id", creds.access_key_id, NULL);
  CASE("no secret", creds.secret_access_key, "");
  CASE("token with a control character", creds.session_token, TOKEN "\n");
#undef CASE

  for (size_t i = 0; i < n; i++) {
    mt_sigv4_t sig = {0};
    mt_err_t err = {{0}};
    int rc = mt_sigv4_sign(&cases[i].req, &cases[i].creds, &sig, &err);
    if (rc != MT_EINVAL || err.msg[0] == '\0')
      MT__FAIL("%s: expected MT_EINVAL with a message, got %d \"%s\"",
               cases[i].what, rc, err.msg);
    /* Any long piece of either would do; these are the distinctive ones. */
    if (strstr(err.msg, "wJalrXUtnFEMI") != NULL ||
        strstr(err.msg, "EXAMPLEKEY") != NULL ||
        strstr(err.msg, "6e86291e8372") != NULL)
      MT__FAIL("%s: the message quotes a secret: %s", cases[i].what, err.msg);
    ASSERT_TRUE(sig.canonical_request.data == NULL && sig.nheaders == 0);
    printf("%-40s %s\n", cases[i].what, err.msg);
  }
}
