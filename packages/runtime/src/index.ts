export const PACKAGE_NAME = '@draft/runtime';
