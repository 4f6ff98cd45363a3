export const PACKAGE_NAME = '@draft/cli';
