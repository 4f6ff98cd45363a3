export const PACKAGE_NAME = '@draft/specpc';
