export {
  type BuildDocumentCacheOptions,
  type BuildDocumentCacheResult,
  buildDocumentCache,
  DEFAULT_STORED_QUERIES,
  DOCUMENT_CACHE_FORMAT,
  DocumentCache,
  type DocumentCacheHeader,
  type OpenDocumentCacheOptions,
  openDocumentCache,
  type StoredModelHeader,
} from './document-cache.js';
export { CACHE_FILE_MAGIC, CACHE_FILE_VERSION, type CacheContainer, openCacheContainer, type SectionRef } from './container.js';
export { type ModelFingerprint, modelFingerprint } from './model-fingerprint.js';
