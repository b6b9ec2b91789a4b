/**
 * DPoP signing keys (RFC 9449) on WebCrypto, runtime-neutral: generated once per server and caller identity, kept as
 * a JWK document beside that identity's tokens (in the `TokenStore`, `Redacted`), and restored as a non-extractable
 * `CryptoKey` for signing. The SDK's `DpopSession` signs the proofs and keeps the nonces; this module only gives it a
 * key pair that outlives the process, so that tokens bound to the key (`cnf.jkt`) stay usable after a restart.
 */
import type { DpopAlg, DpopKeyPair } from "@modelcontextprotocol/client"

/** The algorithms the bridge signs DPoP proofs with. */
export const DPOP_ALGORITHMS = ["ES256", "ES384", "ES512", "EdDSA", "RS256", "PS256"] as const

export type DpopAlgorithm = typeof DPOP_ALGORITHMS[number]

/** The stored form of a key pair: its algorithm and both halves as JWKs. */
interface StoredKey {
  readonly alg: DpopAlgorithm
  readonly privateJwk: JsonWebKey
  readonly publicJwk: JsonWebKey
}

const params = (alg: DpopAlgorithm): RsaHashedImportParams | EcKeyImportParams | Algorithm => {
  switch (alg) {
    case "ES256":
      return { name: "ECDSA", namedCurve: "P-256" } as EcKeyImportParams
    case "ES384":
      return { name: "ECDSA", namedCurve: "P-384" } as EcKeyImportParams
    case "ES512":
      return { name: "ECDSA", namedCurve: "P-521" } as EcKeyImportParams
    case "EdDSA":
      return { name: "Ed25519" }
    case "RS256":
      return { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } as RsaHashedImportParams
    case "PS256":
      return { name: "RSA-PSS", hash: "SHA-256" } as RsaHashedImportParams
  }
}

const generationParams = (alg: DpopAlgorithm): AlgorithmIdentifier | RsaHashedKeyGenParams | EcKeyGenParams =>
  alg === "RS256" || alg === "PS256"
    ? { ...params(alg), modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) } as RsaHashedKeyGenParams
    : params(alg) as EcKeyGenParams

const base64url = (bytes: ArrayBuffer) =>
  btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")

/** The public members of a JWK, those a DPoP proof's `jwk` header carries (RFC 7638 §3.2 names the required ones). */
const publicMembers = (jwk: JsonWebKey): Record<string, string> => {
  const pick = (...names: ReadonlyArray<string>) =>
    Object.fromEntries(names.map((name) => [name, String((jwk as Record<string, unknown>)[name])]))
  return jwk.kty === "EC"
    ? pick("crv", "kty", "x", "y")
    : jwk.kty === "OKP"
    ? pick("crv", "kty", "x")
    : pick("e", "kty", "n")
}

/** The RFC 7638 SHA-256 thumbprint of a public key: what an authorization server binds as the token's `cnf.jkt`. */
export const thumbprint = async (jwk: JsonWebKey): Promise<string> => {
  // The required members in lexicographic order, no whitespace: `publicMembers` lists them sorted.
  const canonical = JSON.stringify(publicMembers(jwk))
  return base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(canonical)))
}

/** A new key pair, as the JSON document to store. */
export const generate = async (alg: DpopAlgorithm): Promise<string> => {
  const pair = await crypto.subtle.generateKey(generationParams(alg), true, ["sign", "verify"]) as CryptoKeyPair
  const stored: StoredKey = {
    alg,
    privateJwk: await crypto.subtle.exportKey("jwk", pair.privateKey),
    publicJwk: publicMembers(await crypto.subtle.exportKey("jwk", pair.publicKey))
  }
  return JSON.stringify(stored)
}

/** The algorithm a stored key signs with (a key of another algorithm than the configured one is replaced). */
export const algorithmOf = (json: string): DpopAlgorithm | undefined => {
  try {
    const alg = (JSON.parse(json) as Partial<StoredKey>).alg
    return DPOP_ALGORITHMS.find((known) => known === alg)
  } catch {
    return undefined
  }
}

/** The key pair of a stored document, the private key not extractable. */
export const restore = async (json: string): Promise<DpopKeyPair> => {
  const stored = JSON.parse(json) as StoredKey
  const algorithm = params(stored.alg)
  const privateKey = await crypto.subtle.importKey("jwk", stored.privateJwk, algorithm, false, ["sign"])
  const publicKey = await crypto.subtle.importKey("jwk", stored.publicJwk, algorithm, true, ["verify"])
  return {
    privateKey,
    publicKey,
    publicJwk: publicMembers(stored.publicJwk),
    thumbprint: await thumbprint(stored.publicJwk),
    alg: stored.alg as DpopAlg
  }
}
