/** The hl7c version: in generated headers, `hl7c --version`, and the compiled-channel cache key. */
export const HL7C_VERSION = '0.1.0';
