// Package kb is kommbridge's help center: it reads a team's articles
// (a directory of files, pages, a sitemap), cuts them into passages by
// their headings, indexes them for keyword search (bleve, BM25, the
// language's analyser) and, with an embeddings endpoint, for search by
// meaning, and writes one versioned index file. serve loads that file and
// answers each question with the passages that match it, fused by
// reciprocal rank, and a match score under which a question counts as
// not in the help center.
//
// A Retriever is what the bridge asks; the embedded Index is one, and an
// external engine (Postgres with pgvector, Qdrant) would be another,
// held to the same contract (kbtest).
package kb
