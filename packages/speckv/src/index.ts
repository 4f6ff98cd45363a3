export const PACKAGE_NAME = '@draft/speckv';
