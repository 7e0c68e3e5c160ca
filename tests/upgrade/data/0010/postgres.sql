--
-- PostgreSQL database dump
--

\restrict hYUSWJXrbdNbkX8kOw4PVOQd0rBiKrbLlA4ucqZMCeMzfMaR13tlTpW9wQcNn7a

-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: accounts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.accounts (
    id character varying(32) NOT NULL,
    thumbprint character varying(64) NOT NULL,
    jwk json NOT NULL,
    status character varying(16) NOT NULL,
    contact json NOT NULL,
    created timestamp with time zone NOT NULL,
    eab_kid character varying(64),
    blocked timestamp with time zone
);


--
-- Name: alembic_version; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.alembic_version (
    version_num character varying(32) NOT NULL
);


--
-- Name: authzs; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.authzs (
    id character varying(32) NOT NULL,
    order_id character varying(32) NOT NULL,
    "position" integer NOT NULL,
    identifier character varying(255) NOT NULL,
    status character varying(16) NOT NULL,
    expires timestamp with time zone NOT NULL,
    wildcard boolean DEFAULT false NOT NULL
);


--
-- Name: budget_buckets; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.budget_buckets (
    "limit" character varying(32) NOT NULL,
    key character varying(255) NOT NULL,
    tokens double precision NOT NULL,
    updated timestamp with time zone NOT NULL,
    label character varying(255)
);


--
-- Name: certificates; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.certificates (
    id character varying(32) NOT NULL,
    order_id character varying(32) NOT NULL,
    serial character varying(64) NOT NULL,
    chain_pem text NOT NULL,
    not_after timestamp with time zone NOT NULL,
    created timestamp with time zone NOT NULL,
    revoked timestamp with time zone,
    revocation_reason integer,
    upstream_revoked timestamp with time zone,
    ari_id character varying(255),
    replaced_by character varying(32),
    ari_start timestamp with time zone,
    ari_end timestamp with time zone,
    ari_explanation text,
    ari_refresh timestamp with time zone
);


--
-- Name: challenges; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.challenges (
    id character varying(32) NOT NULL,
    authz_id character varying(32) NOT NULL,
    type character varying(16) NOT NULL,
    token character varying(64) NOT NULL,
    status character varying(16) NOT NULL,
    validated timestamp with time zone,
    error json,
    validation_records json NOT NULL,
    tries integer DEFAULT 0 NOT NULL
);


--
-- Name: dns_records; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dns_records (
    id integer NOT NULL,
    order_id character varying(32) NOT NULL,
    zone character varying(255) NOT NULL,
    fqdn character varying(255) NOT NULL,
    value character varying(255) NOT NULL,
    created timestamp with time zone NOT NULL,
    state character varying(16) NOT NULL,
    owner_kind character varying(32) DEFAULT 'order'::character varying NOT NULL,
    run character varying(32),
    written timestamp with time zone,
    served timestamp with time zone,
    attempts integer DEFAULT 0 NOT NULL,
    error text
);


--
-- Name: dns_records_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.dns_records_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: dns_records_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.dns_records_id_seq OWNED BY public.dns_records.id;


--
-- Name: eab_keys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.eab_keys (
    kid character varying(64) NOT NULL,
    name character varying(64) NOT NULL,
    hmac_key character varying(128) NOT NULL,
    allow json NOT NULL,
    wildcards boolean NOT NULL,
    sources json NOT NULL,
    requester_in_dns boolean NOT NULL,
    orders_per_hour integer,
    created timestamp with time zone NOT NULL,
    revoked timestamp with time zone,
    profiles json NOT NULL
);


--
-- Name: jobs; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.jobs (
    id integer NOT NULL,
    kind character varying(32) NOT NULL,
    subject_id character varying(255) NOT NULL,
    run_at timestamp with time zone NOT NULL,
    lease_until timestamp with time zone,
    attempts integer NOT NULL,
    generation integer NOT NULL,
    last_error text,
    created timestamp with time zone NOT NULL,
    owner character varying(32)
);


--
-- Name: jobs_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.jobs_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: jobs_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.jobs_id_seq OWNED BY public.jobs.id;


--
-- Name: nonces; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.nonces (
    value character varying(64) NOT NULL,
    expires timestamp with time zone NOT NULL
);


--
-- Name: orders; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.orders (
    id character varying(32) NOT NULL,
    account_id character varying(32) NOT NULL,
    status character varying(16) NOT NULL,
    expires timestamp with time zone NOT NULL,
    identifiers json NOT NULL,
    not_before timestamp with time zone,
    not_after timestamp with time zone,
    error json,
    csr bytea,
    created timestamp with time zone NOT NULL,
    updated timestamp with time zone NOT NULL,
    requester character varying(64),
    budget character varying(16),
    profile character varying(64),
    replaces character varying(255)
);


--
-- Name: upstream_accounts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.upstream_accounts (
    directory_url character varying(1000) NOT NULL,
    key_pem text NOT NULL,
    key_encrypted boolean NOT NULL,
    account_url text,
    created timestamp with time zone NOT NULL
);


--
-- Name: upstream_orders; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.upstream_orders (
    id integer NOT NULL,
    owner_kind character varying(32) NOT NULL,
    owner_id character varying(64) NOT NULL,
    names json NOT NULL,
    profile character varying(64),
    replaces character varying(255),
    url text,
    stage character varying(16) NOT NULL,
    status character varying(16),
    challenges json NOT NULL,
    error json,
    stage_since timestamp with time zone NOT NULL,
    created timestamp with time zone NOT NULL,
    updated timestamp with time zone NOT NULL
);


--
-- Name: upstream_orders_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.upstream_orders_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: upstream_orders_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.upstream_orders_id_seq OWNED BY public.upstream_orders.id;


--
-- Name: upstream_pauses; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.upstream_pauses (
    name character varying(255) NOT NULL,
    unpause_url text,
    since timestamp with time zone NOT NULL
);


--
-- Name: dns_records id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dns_records ALTER COLUMN id SET DEFAULT nextval('public.dns_records_id_seq'::regclass);


--
-- Name: jobs id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.jobs ALTER COLUMN id SET DEFAULT nextval('public.jobs_id_seq'::regclass);


--
-- Name: upstream_orders id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.upstream_orders ALTER COLUMN id SET DEFAULT nextval('public.upstream_orders_id_seq'::regclass);


--
-- Data for Name: accounts; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.accounts (id, thumbprint, jwk, status, contact, created, eab_kid, blocked) FROM stdin;
frozenclient00000000	I9o6xEPoNuBb19SvY55dFzBVRUhkdOWTwPACc2rfRAY	{"x": "R8N-bvIK1Y3_BFnro--NR9BJSIqExvwV1ZYzicjNuUo", "y": "m1T7EcTzVDq2YuQVeN-eAExEkUpSVvyiFXpORCkgit0", "crv": "P-256", "kty": "EC"}	valid	["mailto:ops@example.test"]	2026-11-08 01:56:19+00	\N	\N
teamaccount0000000000	NBj4dQXU9rePxSWODqilCdcz3u-mmDW9Y2lAICWlmJ8	{"x": "LCFF4CFEaJ_u9oSq4CHmTpeeRbV5_BNFucu_4JphjLc", "y": "eCjjb9oUEliFM2135EoD-HuCxarKE4R4G6UQuravea8", "crv": "P-256", "kty": "EC"}	valid	[]	2026-11-08 01:56:19+00	team-kid	2026-12-08 01:56:19+00
goneaccount00000000000	EfRNnK2YgRvYZ2TSykouFYB1Gaaf_Yi_Gyz80X9hbDM	{"x": "XKwiTEg1C68JGPon5udcOsfw6s61Rc6fgK-OHXZJ648", "y": "IwPa4_orzg8Q7H-RJHJcKtgooUqUMivAvFtmECFZEQw", "crv": "P-256", "kty": "EC"}	deactivated	[]	2026-11-08 01:56:19+00	\N	\N
\.


--
-- Data for Name: alembic_version; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.alembic_version (version_num) FROM stdin;
0010
\.


--
-- Data for Name: authzs; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.authzs (id, order_id, "position", identifier, status, expires, wildcard) FROM stdin;
pendingorderauthz0	pendingorder000000000	0	pending.example.test	pending	2026-12-15 01:56:19+00	f
readyorder00authz0	readyorder0000000000	0	ready.example.test	valid	2026-12-15 01:56:19+00	f
processingorauthz0	processingorder00000	0	upgrade.example.test	valid	2026-12-15 01:56:19+00	f
processingorauthz1	processingorder00000	1	www.upgrade.example.test	valid	2026-12-15 01:56:19+00	f
invalidorderauthz0	invalidorder00000000	0	team.example.test	invalid	2026-12-15 01:56:19+00	t
firstorder00authz0	firstorder0000000000	0	upgrade.example.test	valid	2026-12-15 01:56:19+00	f
firstorder00authz1	firstorder0000000000	1	www.upgrade.example.test	valid	2026-12-15 01:56:19+00	f
secondorder0authz0	secondorder000000000	0	upgrade.example.test	valid	2026-12-15 01:56:19+00	f
secondorder0authz1	secondorder000000000	1	www.upgrade.example.test	valid	2026-12-15 01:56:19+00	f
revokedorderauthz0	revokedorder00000000	0	revoked.example.test	valid	2026-12-15 01:56:19+00	f
\.


--
-- Data for Name: budget_buckets; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.budget_buckets ("limit", key, tokens, updated, label) FROM stdin;
orders_per_account	https://acme.example.test/acct/1	299.5	2026-12-08 01:56:19+00	\N
certs_per_domain	example.test	48	2026-12-08 01:56:19+00	example.test
\.


--
-- Data for Name: certificates; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.certificates (id, order_id, serial, chain_pem, not_after, created, revoked, revocation_reason, upstream_revoked, ari_id, replaced_by, ari_start, ari_end, ari_explanation, ari_refresh) FROM stdin;
firstcert00000000000	firstorder0000000000	7d084851f0600069350e2bdab209996335c45294	-----BEGIN CERTIFICATE-----\nMIIBhDCCASugAwIBAgIUfQhIUfBgAGk1DivasgmZYzXEUpQwCgYIKoZIzj0EAwIw\nIjEgMB4GA1UEAwwXSmFja2RhdyB1cGdyYWRlIHRlc3QgQ0EwHhcNMjYwOTE5MDE1\nNjE5WhcNMjYxMjE4MDE1NjE5WjAAMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\nbR35ikMh5naJVoDXiQMg4a6jHW9FM1Ay7gw4K0C2SVQmi5pcRDycAI6a6iis4x+z\nx9HlP7WfrUbFLNw3U5/4X6NhMF8wPAYDVR0RAQH/BDIwMIIUdXBncmFkZS5leGFt\ncGxlLnRlc3SCGHd3dy51cGdyYWRlLmV4YW1wbGUudGVzdDAfBgNVHSMEGDAWgBSE\netgUE3lqDC3zJrQlFhKd4/xUCDAKBggqhkjOPQQDAgNHADBEAiBNHQaloCWAC7Ka\nvAQNVpwIVCk3oGChCmyHMXjzU98EZQIgWwpraGaUrHvtrk7Lbv4Uk0D1VMBviEa+\ntAxY5ZPlSgY=\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nMIIBdzCCAR6gAwIBAgIUJFXwYbceGWv9DKVFT3JKs0XMl9gwCgYIKoZIzj0EAwIw\nIjEgMB4GA1UEAwwXSmFja2RhdyB1cGdyYWRlIHRlc3QgQ0EwHhcNMjUxMTAzMDE1\nNjE5WhcNMzYxMjA1MDE1NjE5WjAiMSAwHgYDVQQDDBdKYWNrZGF3IHVwZ3JhZGUg\ndGVzdCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABB3htR/xiocXaHYbnrYj\nJAF7khMabx/TMtNFNVqPyADwPgS47M4tEqMZkJo1hgFrlECUpO1jcwg982NWUZ1A\n8FyjMjAwMA8GA1UdEwEB/wQFMAMBAf8wHQYDVR0OBBYEFIR62BQTeWoMLfMmtCUW\nEp3j/FQIMAoGCCqGSM49BAMCA0cAMEQCIBn7d4J1qGhrYXiwap7UgWntjxhV7dW4\nLVrHCFhQWZKMAiANjdo0XtQN9NChAyddnvmuynffcNWQtqPWEugfSQ9EKQ==\n-----END CERTIFICATE-----\n	2026-12-18 01:56:19+00	2026-11-08 01:56:19+00	\N	\N	\N	hHrYFBN5agwt8ya0JRYSneP8VAg.fQhIUfBgAGk1DivasgmZYzXEUpQ	secondorder000000000	\N	\N	\N	\N
secondcert0000000000	secondorder000000000	7c1dfca05a4a4806bdfd58ee756ba02ff999073c	-----BEGIN CERTIFICATE-----\nMIIBhjCCASugAwIBAgIUfB38oFpKSAa9/VjudWugL/mZBzwwCgYIKoZIzj0EAwIw\nIjEgMB4GA1UEAwwXSmFja2RhdyB1cGdyYWRlIHRlc3QgQ0EwHhcNMjYxMjA3MDE1\nNjE5WhcNMjcwMzA3MDE1NjE5WjAAMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\nNVX/1FXNNG2p/DEsUROPb74qmnghoDqYr59dsKCaWZNH2zfVVNUGaaHRKO78zb/P\n9azEL/LGNj/a6vDFN8evt6NhMF8wPAYDVR0RAQH/BDIwMIIUdXBncmFkZS5leGFt\ncGxlLnRlc3SCGHd3dy51cGdyYWRlLmV4YW1wbGUudGVzdDAfBgNVHSMEGDAWgBSE\netgUE3lqDC3zJrQlFhKd4/xUCDAKBggqhkjOPQQDAgNJADBGAiEAlmysQbeA0Mnm\n9RQeXCsdCPnLmjSzdTUAuENZ34B5N/QCIQCabVf1s+rhjaLFsFCqQEI8/evpTlH8\n4wi4bJXeiB1TZg==\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nMIIBdzCCAR6gAwIBAgIUJFXwYbceGWv9DKVFT3JKs0XMl9gwCgYIKoZIzj0EAwIw\nIjEgMB4GA1UEAwwXSmFja2RhdyB1cGdyYWRlIHRlc3QgQ0EwHhcNMjUxMTAzMDE1\nNjE5WhcNMzYxMjA1MDE1NjE5WjAiMSAwHgYDVQQDDBdKYWNrZGF3IHVwZ3JhZGUg\ndGVzdCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABB3htR/xiocXaHYbnrYj\nJAF7khMabx/TMtNFNVqPyADwPgS47M4tEqMZkJo1hgFrlECUpO1jcwg982NWUZ1A\n8FyjMjAwMA8GA1UdEwEB/wQFMAMBAf8wHQYDVR0OBBYEFIR62BQTeWoMLfMmtCUW\nEp3j/FQIMAoGCCqGSM49BAMCA0cAMEQCIBn7d4J1qGhrYXiwap7UgWntjxhV7dW4\nLVrHCFhQWZKMAiANjdo0XtQN9NChAyddnvmuynffcNWQtqPWEugfSQ9EKQ==\n-----END CERTIFICATE-----\n	2027-03-07 01:56:19+00	2026-12-08 01:56:19+00	\N	\N	\N	hHrYFBN5agwt8ya0JRYSneP8VAg.fB38oFpKSAa9_VjudWugL_mZBzw	\N	2026-12-15 01:56:19+00	2026-12-17 01:56:19+00	https://acme.example.test/why	2026-12-08 07:56:19+00
revokedcert000000000	revokedorder00000000	b873b1371731d84e8f440b42a03e5a9454df529	-----BEGIN CERTIFICATE-----\nMIIBajCCARGgAwIBAgIUC4c7E3FzHYTo9EC0KgPlqUVN9SkwCgYIKoZIzj0EAwIw\nIjEgMB4GA1UEAwwXSmFja2RhdyB1cGdyYWRlIHRlc3QgQ0EwHhcNMjYxMTI4MDE1\nNjE5WhcNMjcwMjI2MDE1NjE5WjAAMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\nRVEF/JEPX5SwBkiFWS3slWYpWiIUUCUavt/xSxLuWTSG9IoTz03D3jrYvUs3T8Hk\nEhk7+ErgMQW3B7oN+hs4dqNHMEUwIgYDVR0RAQH/BBgwFoIUcmV2b2tlZC5leGFt\ncGxlLnRlc3QwHwYDVR0jBBgwFoAUhHrYFBN5agwt8ya0JRYSneP8VAgwCgYIKoZI\nzj0EAwIDRwAwRAIgDsMLvf460TCe11G6NFz6N/XYvS5aUNSSjg8UAa1kmzQCICK6\nsAjYHRclVp97rH+jsjUb+1INPoqGJDXwCAZQW5C+\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nMIIBdzCCAR6gAwIBAgIUJFXwYbceGWv9DKVFT3JKs0XMl9gwCgYIKoZIzj0EAwIw\nIjEgMB4GA1UEAwwXSmFja2RhdyB1cGdyYWRlIHRlc3QgQ0EwHhcNMjUxMTAzMDE1\nNjE5WhcNMzYxMjA1MDE1NjE5WjAiMSAwHgYDVQQDDBdKYWNrZGF3IHVwZ3JhZGUg\ndGVzdCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABB3htR/xiocXaHYbnrYj\nJAF7khMabx/TMtNFNVqPyADwPgS47M4tEqMZkJo1hgFrlECUpO1jcwg982NWUZ1A\n8FyjMjAwMA8GA1UdEwEB/wQFMAMBAf8wHQYDVR0OBBYEFIR62BQTeWoMLfMmtCUW\nEp3j/FQIMAoGCCqGSM49BAMCA0cAMEQCIBn7d4J1qGhrYXiwap7UgWntjxhV7dW4\nLVrHCFhQWZKMAiANjdo0XtQN9NChAyddnvmuynffcNWQtqPWEugfSQ9EKQ==\n-----END CERTIFICATE-----\n	2027-02-26 01:56:19+00	2026-11-08 01:56:19+00	2026-12-08 01:56:19+00	4	2026-12-08 01:56:19+00	hHrYFBN5agwt8ya0JRYSneP8VAg.C4c7E3FzHYTo9EC0KgPlqUVN9Sk	\N	\N	\N	\N	\N
\.


--
-- Data for Name: challenges; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.challenges (id, authz_id, type, token, status, validated, error, validation_records, tries) FROM stdin;
pendingorderchall0	pendingorderauthz0	http-01	token-pendingorder-0	pending	\N	null	[]	0
readyorder00chall0	readyorder00authz0	http-01	token-readyorder00-0	valid	2026-12-08 01:56:19+00	null	[{"url": "http://ready.example.test/.well-known/acme-challenge/t", "hostname": "ready.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]	1
processingorchall0	processingorauthz0	http-01	token-processingor-0	valid	2026-12-08 01:56:19+00	null	[{"url": "http://upgrade.example.test/.well-known/acme-challenge/t", "hostname": "upgrade.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]	1
processingorchall1	processingorauthz1	http-01	token-processingor-1	valid	2026-12-08 01:56:19+00	null	[{"url": "http://www.upgrade.example.test/.well-known/acme-challenge/t", "hostname": "www.upgrade.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]	1
invalidorderchall0	invalidorderauthz0	http-01	token-invalidorder-0	invalid	\N	{"type": "urn:ietf:params:acme:error:incorrectResponse", "detail": "not the key authorization", "status": 403}	[{"url": "http://*.team.example.test/.well-known/acme-challenge/t", "hostname": "*.team.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]	1
firstorder00chall0	firstorder00authz0	http-01	token-firstorder00-0	valid	2026-12-08 01:56:19+00	null	[{"url": "http://upgrade.example.test/.well-known/acme-challenge/t", "hostname": "upgrade.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]	1
firstorder00chall1	firstorder00authz1	http-01	token-firstorder00-1	valid	2026-12-08 01:56:19+00	null	[{"url": "http://www.upgrade.example.test/.well-known/acme-challenge/t", "hostname": "www.upgrade.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]	1
secondorder0chall0	secondorder0authz0	http-01	token-secondorder0-0	valid	2026-12-08 01:56:19+00	null	[{"url": "http://upgrade.example.test/.well-known/acme-challenge/t", "hostname": "upgrade.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]	1
secondorder0chall1	secondorder0authz1	http-01	token-secondorder0-1	valid	2026-12-08 01:56:19+00	null	[{"url": "http://www.upgrade.example.test/.well-known/acme-challenge/t", "hostname": "www.upgrade.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]	1
revokedorderchall0	revokedorderauthz0	http-01	token-revokedorder-0	valid	2026-12-08 01:56:19+00	null	[{"url": "http://revoked.example.test/.well-known/acme-challenge/t", "hostname": "revoked.example.test", "port": "80", "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}]	1
\.


--
-- Data for Name: dns_records; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.dns_records (id, order_id, zone, fqdn, value, created, state, owner_kind, run, written, served, attempts, error) FROM stdin;
1	processingorder00000	example.test	_acme-challenge.upgrade.example.test	dGhlLXR4dC12YWx1ZS1vZi10aGUtZnJvemVuLXNldA	2026-12-08 01:56:21.254641+00	served	order	run0	2026-12-08 01:56:19+00	2026-12-08 01:56:19+00	0	\N
\.


--
-- Data for Name: eab_keys; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.eab_keys (kid, name, hmac_key, allow, wildcards, sources, requester_in_dns, orders_per_hour, created, revoked, profiles) FROM stdin;
team-kid	team	ZnJvemVuLWVhYi1obWFjLWtleS1vZi0zMi1ieXRlcyE	["*.team.example.test"]	t	["10.0.0.0/8"]	f	30	2026-11-08 01:56:19+00	\N	[]
old-kid	old	ZnJvemVuLWVhYi1obWFjLWtleS1vZi0zMi1ieXRlcyE	["old.example.test"]	f	[]	t	\N	2026-11-08 01:56:19+00	2026-12-08 01:56:19+00	["shortlived"]
\.


--
-- Data for Name: jobs; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.jobs (id, kind, subject_id, run_at, lease_until, attempts, generation, last_error, created, owner) FROM stdin;
1	order	processingorder00000	2026-12-15 01:56:19+00	\N	2	3	upstream: connection refused	2026-11-08 01:56:19+00	\N
2	validate	pendingorderchall0	2026-12-15 01:56:19+00	\N	0	0	\N	2026-12-08 01:56:19+00	\N
\.


--
-- Data for Name: nonces; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.nonces (value, expires) FROM stdin;
frozen-nonce-fresh	2026-12-15 01:56:19+00
frozen-nonce-stale	2026-11-08 01:56:19+00
\.


--
-- Data for Name: orders; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.orders (id, account_id, status, expires, identifiers, not_before, not_after, error, csr, created, updated, requester, budget, profile, replaces) FROM stdin;
pendingorder000000000	frozenclient00000000	pending	2026-12-15 01:56:19+00	["pending.example.test"]	\N	\N	\N	\N	2026-11-08 01:56:19+00	2026-12-08 01:56:19+00	\N	\N	\N	\N
readyorder0000000000	frozenclient00000000	ready	2026-12-15 01:56:19+00	["ready.example.test"]	\N	\N	\N	\N	2026-11-08 01:56:19+00	2026-12-08 01:56:19+00	10.1.2.3	\N	\N	\N
processingorder00000	frozenclient00000000	processing	2026-12-15 01:56:19+00	["upgrade.example.test", "www.upgrade.example.test"]	\N	\N	\N	\\x308201083081ae02010030003059301306072a8648ce3d020106082a8648ce3d030107034200041c3a72e664e0baf7b0ab974b4b81f464d6bc49d1376218e8e070f9f6a2180d126109646e806e9e887b8268de1b1b819062c08fafde484c62964663da898b627ba04c304a06092a864886f70d01090e313d303b30390603551d11043230308214757067726164652e6578616d706c652e7465737482187777772e757067726164652e6578616d706c652e74657374300a06082a8648ce3d0403020349003046022100907caf18c4c5844b4e4d3c4390184dfd6358a7f00267783c97f1fd6d781f6494022100d5c370f396ea6714732896f1140694b842d55d867e1f6b430ff97a9f63700c66	2026-11-08 01:56:19+00	2026-12-08 01:56:19+00	\N	reserved	\N	\N
invalidorder00000000	teamaccount0000000000	invalid	2026-12-15 01:56:19+00	["*.team.example.test"]	\N	\N	{"type": "urn:ietf:params:acme:error:incorrectResponse", "detail": "wrong", "status": 403}	\N	2026-11-08 01:56:19+00	2026-12-08 01:56:19+00	\N	\N	\N	\N
firstorder0000000000	frozenclient00000000	valid	2026-12-15 01:56:19+00	["upgrade.example.test", "www.upgrade.example.test"]	\N	\N	\N	\\x308201083081ae02010030003059301306072a8648ce3d020106082a8648ce3d030107034200041c3a72e664e0baf7b0ab974b4b81f464d6bc49d1376218e8e070f9f6a2180d126109646e806e9e887b8268de1b1b819062c08fafde484c62964663da898b627ba04c304a06092a864886f70d01090e313d303b30390603551d11043230308214757067726164652e6578616d706c652e7465737482187777772e757067726164652e6578616d706c652e74657374300a06082a8648ce3d0403020349003046022100907caf18c4c5844b4e4d3c4390184dfd6358a7f00267783c97f1fd6d781f6494022100d5c370f396ea6714732896f1140694b842d55d867e1f6b430ff97a9f63700c66	2026-11-08 01:56:19+00	2026-12-08 01:56:19+00	\N	settled	\N	\N
secondorder000000000	frozenclient00000000	valid	2026-12-15 01:56:19+00	["upgrade.example.test", "www.upgrade.example.test"]	\N	\N	\N	\\x308201083081ae02010030003059301306072a8648ce3d020106082a8648ce3d030107034200041c3a72e664e0baf7b0ab974b4b81f464d6bc49d1376218e8e070f9f6a2180d126109646e806e9e887b8268de1b1b819062c08fafde484c62964663da898b627ba04c304a06092a864886f70d01090e313d303b30390603551d11043230308214757067726164652e6578616d706c652e7465737482187777772e757067726164652e6578616d706c652e74657374300a06082a8648ce3d0403020349003046022100907caf18c4c5844b4e4d3c4390184dfd6358a7f00267783c97f1fd6d781f6494022100d5c370f396ea6714732896f1140694b842d55d867e1f6b430ff97a9f63700c66	2026-11-08 01:56:19+00	2026-12-08 01:56:19+00	\N	settled	default	hHrYFBN5agwt8ya0JRYSneP8VAg.fQhIUfBgAGk1DivasgmZYzXEUpQ
revokedorder00000000	frozenclient00000000	valid	2026-12-15 01:56:19+00	["revoked.example.test"]	\N	\N	\N	\\x308201083081ae02010030003059301306072a8648ce3d020106082a8648ce3d030107034200041c3a72e664e0baf7b0ab974b4b81f464d6bc49d1376218e8e070f9f6a2180d126109646e806e9e887b8268de1b1b819062c08fafde484c62964663da898b627ba04c304a06092a864886f70d01090e313d303b30390603551d11043230308214757067726164652e6578616d706c652e7465737482187777772e757067726164652e6578616d706c652e74657374300a06082a8648ce3d0403020349003046022100907caf18c4c5844b4e4d3c4390184dfd6358a7f00267783c97f1fd6d781f6494022100d5c370f396ea6714732896f1140694b842d55d867e1f6b430ff97a9f63700c66	2026-11-08 01:56:19+00	2026-12-08 01:56:19+00	\N	\N	\N	\N
\.


--
-- Data for Name: upstream_accounts; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.upstream_accounts (directory_url, key_pem, key_encrypted, account_url, created) FROM stdin;
https://acme.example.test/directory	-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgo12zb6o445jCZM53\n/Txd95yrmPg8SVpWq5NmHssXTT6hRANCAASoa0t2axb/e11iYZx/oqZTrViURVvc\nFqeONg0M+yenyU7XEf/F38UT6IlJuGm9M/E+1lV5rx2pchvuXMSNbTGr\n-----END PRIVATE KEY-----\n	f	https://acme.example.test/acct/1	2026-11-08 01:56:19+00
\.


--
-- Data for Name: upstream_orders; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.upstream_orders (id, owner_kind, owner_id, names, profile, replaces, url, stage, status, challenges, error, stage_since, created, updated) FROM stdin;
1	order	processingorder00000	["upgrade.example.test", "www.upgrade.example.test"]	\N	\N	https://acme.example.test/order/2	authorize	pending	[{"authz": "https://acme.example.test/authz/1", "url": "https://acme.example.test/chall/1"}]	\N	2026-12-08 01:56:19+00	2026-12-08 01:56:19+00	2026-12-08 01:56:19+00
2	order	secondorder000000000	["upgrade.example.test", "www.upgrade.example.test"]	default	hHrYFBN5agwt8ya0JRYSneP8VAg.fQhIUfBgAGk1DivasgmZYzXEUpQ	https://acme.example.test/order/3	done	valid	[]	\N	2026-12-08 01:56:19+00	2026-12-08 01:56:19+00	2026-12-08 01:56:19+00
\.


--
-- Data for Name: upstream_pauses; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.upstream_pauses (name, unpause_url, since) FROM stdin;
paused.example.test	https://acme.example.test/unpause	2026-12-08 01:56:19+00
\.


--
-- Name: dns_records_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.dns_records_id_seq', 1, true);


--
-- Name: jobs_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.jobs_id_seq', 2, true);


--
-- Name: upstream_orders_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.upstream_orders_id_seq', 2, true);


--
-- Name: accounts accounts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.accounts
    ADD CONSTRAINT accounts_pkey PRIMARY KEY (id);


--
-- Name: accounts accounts_thumbprint_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.accounts
    ADD CONSTRAINT accounts_thumbprint_key UNIQUE (thumbprint);


--
-- Name: alembic_version alembic_version_pkc; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alembic_version
    ADD CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num);


--
-- Name: authzs authzs_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.authzs
    ADD CONSTRAINT authzs_pkey PRIMARY KEY (id);


--
-- Name: budget_buckets budget_buckets_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.budget_buckets
    ADD CONSTRAINT budget_buckets_pkey PRIMARY KEY ("limit", key);


--
-- Name: certificates certificates_order_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.certificates
    ADD CONSTRAINT certificates_order_id_key UNIQUE (order_id);


--
-- Name: certificates certificates_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.certificates
    ADD CONSTRAINT certificates_pkey PRIMARY KEY (id);


--
-- Name: challenges challenges_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.challenges
    ADD CONSTRAINT challenges_pkey PRIMARY KEY (id);


--
-- Name: dns_records dns_records_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dns_records
    ADD CONSTRAINT dns_records_pkey PRIMARY KEY (id);


--
-- Name: eab_keys eab_keys_name_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.eab_keys
    ADD CONSTRAINT eab_keys_name_key UNIQUE (name);


--
-- Name: eab_keys eab_keys_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.eab_keys
    ADD CONSTRAINT eab_keys_pkey PRIMARY KEY (kid);


--
-- Name: jobs jobs_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.jobs
    ADD CONSTRAINT jobs_pkey PRIMARY KEY (id);


--
-- Name: nonces nonces_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.nonces
    ADD CONSTRAINT nonces_pkey PRIMARY KEY (value);


--
-- Name: orders orders_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_pkey PRIMARY KEY (id);


--
-- Name: upstream_accounts upstream_accounts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.upstream_accounts
    ADD CONSTRAINT upstream_accounts_pkey PRIMARY KEY (directory_url);


--
-- Name: upstream_orders upstream_orders_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.upstream_orders
    ADD CONSTRAINT upstream_orders_pkey PRIMARY KEY (id);


--
-- Name: upstream_pauses upstream_pauses_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.upstream_pauses
    ADD CONSTRAINT upstream_pauses_pkey PRIMARY KEY (name);


--
-- Name: ix_accounts_eab_kid; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_accounts_eab_kid ON public.accounts USING btree (eab_kid);


--
-- Name: ix_authzs_order_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_authzs_order_id ON public.authzs USING btree (order_id);


--
-- Name: ix_authzs_status; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_authzs_status ON public.authzs USING btree (status);


--
-- Name: ix_certificates_ari_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_certificates_ari_id ON public.certificates USING btree (ari_id);


--
-- Name: ix_certificates_not_after; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_certificates_not_after ON public.certificates USING btree (not_after);


--
-- Name: ix_certificates_serial; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_certificates_serial ON public.certificates USING btree (serial);


--
-- Name: ix_challenges_authz_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_challenges_authz_id ON public.challenges USING btree (authz_id);


--
-- Name: ix_dns_records_order_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_dns_records_order_id ON public.dns_records USING btree (order_id);


--
-- Name: ix_dns_records_zone_state; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_dns_records_zone_state ON public.dns_records USING btree (zone, state);


--
-- Name: ix_jobs_kind_subject; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX ix_jobs_kind_subject ON public.jobs USING btree (kind, subject_id);


--
-- Name: ix_jobs_owner; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_jobs_owner ON public.jobs USING btree (owner);


--
-- Name: ix_jobs_run_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_jobs_run_at ON public.jobs USING btree (run_at);


--
-- Name: ix_nonces_expires; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_nonces_expires ON public.nonces USING btree (expires);


--
-- Name: ix_orders_account_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_orders_account_id ON public.orders USING btree (account_id);


--
-- Name: ix_orders_budget; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_orders_budget ON public.orders USING btree (budget);


--
-- Name: ix_orders_expires; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_orders_expires ON public.orders USING btree (expires);


--
-- Name: ix_orders_status; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_orders_status ON public.orders USING btree (status);


--
-- Name: ix_upstream_orders_owner; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX ix_upstream_orders_owner ON public.upstream_orders USING btree (owner_kind, owner_id);


--
-- Name: authzs authzs_order_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.authzs
    ADD CONSTRAINT authzs_order_id_fkey FOREIGN KEY (order_id) REFERENCES public.orders(id);


--
-- Name: certificates certificates_order_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.certificates
    ADD CONSTRAINT certificates_order_id_fkey FOREIGN KEY (order_id) REFERENCES public.orders(id);


--
-- Name: challenges challenges_authz_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.challenges
    ADD CONSTRAINT challenges_authz_id_fkey FOREIGN KEY (authz_id) REFERENCES public.authzs(id);


--
-- Name: accounts fk_accounts_eab_kid_eab_keys; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.accounts
    ADD CONSTRAINT fk_accounts_eab_kid_eab_keys FOREIGN KEY (eab_kid) REFERENCES public.eab_keys(kid);


--
-- Name: orders orders_account_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_account_id_fkey FOREIGN KEY (account_id) REFERENCES public.accounts(id);


--
-- PostgreSQL database dump complete
--

\unrestrict hYUSWJXrbdNbkX8kOw4PVOQd0rBiKrbLlA4ucqZMCeMzfMaR13tlTpW9wQcNn7a

