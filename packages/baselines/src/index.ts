export const PACKAGE_NAME = '@draft/baselines';
