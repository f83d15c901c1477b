/* moontask.crypto against published vectors (RFC 4231 for HMAC-SHA256,
 * FIPS 180-2's examples for SHA-256, RFC 4648 for base64 and hex), and a
 * Stripe-style webhook check written as a handler would write it. */
#include "test.h"
#include "toolkit_test.h"

TEST(crypto_hmac_sha256_rfc4231) {
  kit_t k;
  kit_open(&k, "/nonexistent", NULL, NULL);
  /* RFC 4231, section 4: test cases 1-7 (case 5 compares the first 128
   * bits, as the RFC does). */
  kit_ok(&k,
         "local c = moontask.crypto\n"
         "local function mac(key, data)\n"
         "  local m = c.hmac_sha256(key, data)\n"
         "  assert(#m == 32, 'a MAC is 32 raw bytes, not ' .. #m)\n"
         "  return c.hex_encode(m)\n"
         "end\n"
         "local function check(n, got, want)\n"
         "  assert(got == want, ('case %d: %s ~= %s'):format(n, got, want))\n"
         "end\n"
         "check(1, mac(('\\x0b'):rep(20), 'Hi There'),\n"
         "  "
         "'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7')"
         "\n"
         "check(2, mac('Jefe', 'what do ya want for nothing?'),\n"
         "  "
         "'5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843')"
         "\n"
         "check(3, mac(('\\xaa'):rep(20), ('\\xdd'):rep(50)),\n"
         "  "
         "'773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe')"
         "\n"
         "check(4, mac(c.hex_decode("
         "'0102030405060708090a0b0c0d0e0f10111213141516171819'),\n"
         "    ('\\xcd'):rep(50)),\n"
         "  "
         "'82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b')"
         "\n"
         "check(5, mac(('\\x0c'):rep(20), 'Test With Truncation'):sub(1, "
         "32),\n"
         "  'a3b6167473100ee06e0c796c2955552b')\n"
         "check(6, mac(('\\xaa'):rep(131),\n"
         "    'Test Using Larger Than Block-Size Key - Hash Key First'),\n"
         "  "
         "'60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54')"
         "\n"
         "check(7, mac(('\\xaa'):rep(131),\n"
         "    'This is a test using a larger than block-size key and a '\n"
         "    .. 'larger than block-size data. The key needs to be hashed '\n"
         "    .. 'before being used by the HMAC algorithm.'),\n"
         "  "
         "'9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2')"
         "\n");
  kit_close(&k);
}

TEST(crypto_sha256_known_vectors) {
  kit_t k;
  kit_open(&k, "/nonexistent", NULL, NULL);
  ASSERT_EQ_STR(
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
      kit_string(&k, "return moontask.crypto.hex_encode("
                     "moontask.crypto.sha256('abc'))"));
  ASSERT_EQ_STR(
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      kit_string(&k, "return moontask.crypto.hex_encode("
                     "moontask.crypto.sha256(''))"));
  ASSERT_EQ_STR(
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
      kit_string(&k, "return moontask.crypto.hex_encode(moontask.crypto."
                     "sha256('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmno"
                     "mnopnopq'))"));
  /* Raw bytes, NULs included: the digest is 32 bytes, not a C string. */
  ASSERT_EQ_STR("32", kit_string(&k, "return tostring(#moontask.crypto."
                                     "sha256('\\0\\0\\0'))"));
  kit_close(&k);
}

TEST(crypto_base64_rfc4648) {
  kit_t k;
  kit_open(&k, "/nonexistent", NULL, NULL);
  kit_ok(&k, "local c = moontask.crypto\n"
             "local vectors = { {'', ''}, {'f', 'Zg=='}, {'fo', 'Zm8='},\n"
             "  {'foo', 'Zm9v'}, {'foob', 'Zm9vYg=='}, {'fooba', 'Zm9vYmE='},\n"
             "  {'foobar', 'Zm9vYmFy'} }\n"
             "for _, v in ipairs(vectors) do\n"
             "  local enc = c.base64_encode(v[1])\n"
             "  assert(enc == v[2], v[1] .. ' encodes as ' .. enc)\n"
             "  local dec, err = c.base64_decode(v[2])\n"
             "  assert(dec == v[1], v[2] .. ' decodes as ' .. tostring(dec) "
             ".. ' ' .. tostring(err))\n"
             "end\n"
             /* Padding may be left out, as many APIs do. */
             "assert(c.base64_decode('Zm9vYg') == 'foob')\n"
             "assert(c.base64_decode('Zm9vYmE') == 'fooba')\n"
             /* Every byte value survives a round trip. */
             "local all = {}\n"
             "for i = 0, 255 do all[#all + 1] = string.char(i) end\n"
             "all = table.concat(all)\n"
             "assert(c.base64_decode(c.base64_encode(all)) == all)\n"
             "assert(c.base64_encode('\\xfb\\xff') == '+/8=')\n");
  kit_close(&k);
}

TEST(crypto_base64_refuses_malformed_text) {
  kit_t k;
  kit_open(&k, "/nonexistent", NULL, NULL);
  const char *cases[][2] = {
      {"Zm9v YmFy", "not a base64 digit at byte 5"},
      {"Zm9v\\nYmFy", "not a base64 digit at byte 5"},
      {"Zm=9v", "padding in the middle at byte 3"},
      {"Zm9vY", "truncated input"},
      {"Zh==", "non-zero bits after the last byte"},
      {"Zm9=", "non-zero bits after the last byte"},
      {"Zm9v-_", "not a base64 digit at byte 5"},
      {"=", "padding in the middle at byte 1"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char src[256];
    snprintf(src, sizeof src,
             "local v, err = moontask.crypto.base64_decode('%s')\n"
             "assert(v == nil, 'decoded')\n"
             "return err",
             cases[i][0]);
    const char *err = kit_string(&k, src);
    if (strstr(err, cases[i][1]) == NULL)
      MT__FAIL("%s: \"%s\" lacks \"%s\"", cases[i][0], err, cases[i][1]);
  }
  kit_close(&k);
}

TEST(crypto_hex_round_trip_and_refusals) {
  kit_t k;
  kit_open(&k, "/nonexistent", NULL, NULL);
  kit_ok(&k, "local c = moontask.crypto\n"
             "assert(c.hex_encode('foobar') == '666f6f626172')\n"
             "assert(c.hex_decode('666F6F626172') == 'foobar')\n"
             "assert(c.hex_decode('666f6f626172') == 'foobar')\n"
             "assert(c.hex_encode('') == '' and c.hex_decode('') == '')\n"
             "assert(c.hex_encode('\\0\\255') == '00ff')\n"
             "local v, err = c.hex_decode('abc')\n"
             "assert(v == nil and err:find('odd number of digits'), err)\n"
             "v, err = c.hex_decode('zz')\n"
             "assert(v == nil and err:find('byte 1 is not a hex digit'), "
             "err)\n");
  kit_close(&k);
}

TEST(crypto_equal_compares_whole_strings) {
  kit_t k;
  kit_open(&k, "/nonexistent", NULL, NULL);
  kit_ok(&k, "local eq = moontask.crypto.equal\n"
             "assert(eq('', ''))\n"
             "assert(eq('signature', 'signature'))\n"
             "assert(not eq('signature', 'signaturE'))\n"
             "assert(not eq('Signature', 'signature'))\n"
             "assert(not eq('sig', 'signature'))\n"
             "assert(not eq('signature', ''))\n"
             /* Past a NUL byte too: not a C string comparison. */
             "assert(not eq('a\\0b', 'a\\0c'))\n"
             "assert(eq('a\\0b', 'a\\0b'))\n");
  kit_raises(&k, "return moontask.crypto.equal('a')", "bad argument #2");
  kit_close(&k);
}

TEST(crypto_random_bytes) {
  kit_t k;
  kit_open(&k, "/nonexistent", NULL, NULL);
  kit_ok(&k, "local r = moontask.crypto.random\n"
             "assert(#r(32) == 32 and #r(0) == 0 and #r(1) == 1)\n"
             /* 2^-256 is as close to never as it gets. */
             "assert(r(32) ~= r(32))\n"
             "local seen = {}\n"
             "for b in r(4096):gmatch('.') do seen[b] = true end\n"
             "local n = 0\n"
             "for _ in pairs(seen) do n = n + 1 end\n"
             "assert(n > 200, 'only ' .. n .. ' distinct byte values')\n");
  kit_raises(&k, "return moontask.crypto.random(-1)",
             "must be a count of bytes from 0 to 1048576");
  kit_raises(&k, "return moontask.crypto.random(1048577)",
             "must be a count of bytes from 0 to 1048576");
  kit_raises(&k, "return moontask.crypto.random(1.5)",
             "number has no integer representation");
  kit_close(&k);
}

TEST(crypto_misuse_raises) {
  kit_t k;
  kit_open(&k, "/nonexistent", NULL, NULL);
  kit_raises(&k, "return moontask.crypto.sha256()", "bad argument #1");
  kit_raises(&k, "return moontask.crypto.hmac_sha256('key')",
             "bad argument #2");
  kit_raises(&k, "return moontask.crypto.hex_encode({})", "bad argument #1");
  kit_raises(&k, "return moontask.crypto.base64_decode(nil)",
             "bad argument #1");
  kit_close(&k);
}

/* The check a payment provider's webhook handler makes: the
 * Stripe-Signature header is "t=<unix time>,v1=<hex HMAC-SHA256 of
 * '<t>.<raw body>' under the endpoint's secret>". The expected signature
 * was computed with Python's hmac module, independently of OpenSSL. */
static const char stripe_verify[] =
    "local crypto = moontask.crypto\n"
    "local function verify(body, header, secret, now, tolerance)\n"
    "  local t = header:match('t=(%d+)')\n"
    "  if t == nil then return false, 'no timestamp' end\n"
    "  if math.abs(now - tonumber(t)) > tolerance then\n"
    "    return false, 'timestamp outside the tolerance'\n"
    "  end\n"
    "  local expected = crypto.hmac_sha256(secret, t .. '.' .. body)\n"
    "  for v1 in header:gmatch('v1=(%x+)') do\n"
    "    local given = crypto.hex_decode(v1)\n"
    "    if given and crypto.equal(given, expected) then return true end\n"
    "  end\n"
    "  return false, 'no matching signature'\n"
    "end\n"
    "local secret = 'whsec_test_secret'\n"
    "local body = '{\"id\":\"evt_1\",\"type\":\"payment_intent.succeeded\"}'\n"
    "local sig = "
    "'22d8dc182f5c588077683bd378368e29765bfe5df2560112b4f28fef120f0e31'\n"
    "local header = 't=1700000000,v1=' .. sig\n"
    "local results = {}\n"
    "local function try(...)\n"
    "  local ok, why = verify(...)\n"
    "  results[#results + 1] = ok and 'ok' or why\n"
    "end\n"
    "try(body, header, secret, 1700000100, 300)\n"
    /* Another scheme's signature listed first is skipped, as Stripe does
     * during a secret's rotation. */
    "try(body, 't=1700000000,v1=' .. ('0'):rep(64) .. ',v1=' .. sig,\n"
    "    secret, 1700000000, 300)\n"
    "try(body:gsub('evt_1', 'evt_2'), header, secret, 1700000000, 300)\n"
    "try(body, header, 'whsec_other', 1700000000, 300)\n"
    "try(body, header, secret, 1700000000 + 301, 300)\n"
    "try(body, 't=1700000001,v1=' .. sig, secret, 1700000000, 300)\n"
    "try(body, 'v1=' .. sig, secret, 1700000000, 300)\n"
    "return table.concat(results, '|')\n";

TEST(crypto_verifies_stripe_webhook_signature) {
  kit_t k;
  kit_open(&k, "/nonexistent", NULL, NULL);
  ASSERT_EQ_STR("ok|ok|no matching signature|no matching signature|"
                "timestamp outside the tolerance|no matching signature|"
                "no timestamp",
                kit_string(&k, stripe_verify));
  kit_close(&k);
}

/* Signing a request the way many APIs want it (a base64 HMAC of the
 * method, path, date and body hash), against Python's hmac and hashlib. */
TEST(crypto_signs_a_request) {
  kit_t k;
  kit_open(&k, "/nonexistent", NULL, NULL);
  const char *sig = kit_string(
      &k, "local c = moontask.crypto\n"
          "local body = moontask.json.encode({ amount = 2500, currency = "
          "'nok' })\n"
          "local canonical = table.concat({ 'POST', '/v1/charges',\n"
          "  'Mon, 27 Nov 2026 17:20:01 GMT', c.hex_encode(c.sha256(body)) "
          "}, '\\n')\n"
          "return c.base64_encode(c.hmac_sha256('sk_test_key', canonical))\n");
  /* python3 -c 'import hmac,hashlib,base64; b=b"{\"amount\":2500,
   * \"currency\":\"nok\"}"; m="\n".join(["POST","/v1/charges",
   * "Mon, 27 Nov 2026 17:20:01 GMT",hashlib.sha256(b).hexdigest()]);
   * print(base64.b64encode(hmac.new(b"sk_test_key",m.encode(),
   * hashlib.sha256).digest()).decode())' */
  ASSERT_EQ_STR("EHjRWuNFrQaNE0AcPWEwG4jh2P/NxWYDZm8Jc7w3GLQ=", sig);
  kit_close(&k);
}
