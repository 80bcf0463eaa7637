/**
 * @fedlhs/ehr: reading a clinic's local data into numeric datasets for a study's feature
 * spec. Runs only inside the node agent; nothing here sends data anywhere.
 */
export * from './flat-table.js';
