/* console-accueil.js — see console.js; built in its own commit. */
"use strict";
