export const PACKAGE_NAME = '@draft/core';
