export const PACKAGE_NAME = '@draft/cuda';
