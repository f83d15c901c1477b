/*
 * AWS credentials, found where the AWS SDKs look for them, in their order;
 * the first source that is configured wins:
 *
 *   1. the environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
 *      optionally AWS_SESSION_TOKEN;
 *   2. the shared files: a profile (the configured one, else $AWS_PROFILE,
 *      else "default") of ~/.aws/credentials ($AWS_SHARED_CREDENTIALS_FILE),
 *      sections "[name]", then of ~/.aws/config ($AWS_CONFIG_FILE),
 *      sections "[profile name]" and "[default]": static keys
 *      (aws_access_key_id, aws_secret_access_key, aws_session_token), or
 *      role_arn with web_identity_token_file as in 3;
 *   3. web identity: AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN (and
 *      AWS_ROLE_SESSION_NAME), exchanged with STS AssumeRoleWithWebIdentity,
 *      an unsigned call (EKS's IAM roles for service accounts);
 *   4. container credentials: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (on
 *      http://169.254.170.2) or AWS_CONTAINER_CREDENTIALS_FULL_URI, with
 *      AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE) when set (ECS tasks, EKS
 *      Pod Identity);
 *   5. the EC2 instance metadata service, IMDSv2 only (a session token
 *      first), at $AWS_EC2_METADATA_SERVICE_ENDPOINT or
 *      http://169.254.169.254, unless AWS_EC2_METADATA_DISABLED=true. Its
 *      timeouts are one second, so a machine that is not on EC2 finds out
 *      fast.
 *
 * A source that is configured but fails (a profile without its secret, STS
 * refusing the token) is an error, not a reason to try the next one: going
 * on would sign with credentials nobody meant to use. Profiles that need
 * what is not implemented (source_profile role chains, credential_process,
 * SSO) are refused by name for the same reason.
 *
 * The provider owns the current credentials. mt_aws_creds_open() resolves
 * the chain once, blocking (at start-up, or in the CLI). Credentials that
 * expire (3, 4, 5) are fetched again ahead of their expiry by a thread of
 * the provider's own, from the source that won, with mt_http_fetch_sync();
 * should that fail it retries, logging to stderr, and the old credentials
 * serve until they expire.
 *
 * Threads: mt_aws_creds_get() and mt_aws_creds_source() may be called from
 * any thread at once, and never wait on the network. open and close belong
 * to one owner; close does not wait for a refresh in flight (the thread
 * finishes it and lets go).
 *
 * Secrets (secret keys, session tokens, web identity and authorisation
 * tokens) never appear in an error message, a log line or the source
 * description; messages name the source and what is missing ("profile \"x\"
 * in /root/.aws/credentials has no aws_secret_access_key"). Copies are
 * wiped from memory when freed.
 */
#ifndef MT_AWS_CREDENTIALS_H
#define MT_AWS_CREDENTIALS_H

#include "aws/sigv4.h"
#include "common/error.h"

typedef struct mt_aws_creds_provider_s mt_aws_creds_provider_t;

typedef struct mt_aws_creds_opts_s {
  const char *profile; /* NULL: $AWS_PROFILE, else "default" */
  /* Where STS is for web identity. NULL: $AWS_ENDPOINT_URL_STS, else
   * $AWS_ENDPOINT_URL, else the region's endpoint (https://sts.<region>.
   * amazonaws.com) when a region is known, else https://sts.amazonaws.com */
  const char *sts_endpoint;
  /* NULL: $AWS_REGION, else $AWS_DEFAULT_REGION, else the profile's
   * region in the config file. Only STS's endpoint depends on it. */
  const char *region;
  /* Tests: stands in for http://169.254.170.2, which
   * AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is relative to. */
  const char *container_host;
  /* Refresh this long before expiry; 0: 600 s. Credentials that live
   * shorter than twice this are refreshed halfway through their life. */
  double refresh_ahead;
} mt_aws_creds_opts_t;

/* Credentials copied out of the provider: the caller's until
 * mt_aws_creds_copy_free(). */
typedef struct mt_aws_creds_copy_s {
  mt_aws_creds_t creds; /* points into mem */
  double expires_at;    /* seconds since the epoch; 0: they do not expire */
  char *mem;
  size_t mem_len;
} mt_aws_creds_copy_t;

/* Resolves the chain (blocking; opts may be NULL) and, for credentials that
 * expire, starts the refresh thread. Returns 0; MT_ECONFIG when no source
 * is configured (the message lists what was looked at) or one is
 * configured wrongly; MT_EIO or MT_ETIMEDOUT when a configured source could
 * not be reached or refused; MT_ENOMEM; MT_ESYS. */
int mt_aws_creds_open(const mt_aws_creds_opts_t *opts,
                      mt_aws_creds_provider_t **out, mt_err_t *err);

/* Copies the current credentials into *out. Returns 0, MT_ESTATE when they
 * have expired because every refresh since failed (the message says why),
 * or MT_ENOMEM. Any thread; never blocks on the network. */
int mt_aws_creds_get(mt_aws_creds_provider_t *p, mt_aws_creds_copy_t *out,
                     mt_err_t *err);

/* Wipes and frees a copy; accepts NULL and a zeroed copy. */
void mt_aws_creds_copy_free(mt_aws_creds_copy_t *c);

/* Which source won, for `moontask check` and logs: "environment",
 * "profile \"ci\" in /home/me/.aws/credentials", "web identity (role
 * arn:aws:iam::...)", "container credentials (http://169.254.170.2)",
 * "EC2 instance metadata (role r at http://169.254.169.254)". Constant
 * while the provider lives; any thread. */
const char *mt_aws_creds_source(const mt_aws_creds_provider_t *p);

/* Stops the refresh thread, wipes the credentials and frees the provider;
 * accepts NULL. */
void mt_aws_creds_close(mt_aws_creds_provider_t *p);

#endif
